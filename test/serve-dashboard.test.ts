/**
 * The dashboard in a real browser (Debian's Chromium driven by playwright-core, never a browser download):
 * sign in with a key from the keyboard, preview a job (nothing sent), confirm it, follow it live to
 * 100 % with its plot and flow controller, the numbers shown as the API gives them, the failed sessions
 * listed and downloaded, the audit chain verified; and a key with fewer scopes told what it lacks.
 */
import * as assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { chromium, type Page } from 'playwright-core';
import { ids, startService } from './helpers/service.js';

const CHROMIUM = '/usr/bin/chromium';
const SESSIONS = 10_000;
const GHOSTS = ['ghost-1', 'ghost-2', 'ghost-3'];

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
/** As the page writes numbers. */
const whole = (n: number): string => integer.format(n);
const oneDecimal = (n: number): string => decimal.format(n);

async function open(t: TestContext, url: string): Promise<Page> {
  // Never skipped: .ci/run installs Debian's Chromium; without it this test fails and says why.
  assert.ok(existsSync(CHROMIUM), `no ${CHROMIUM}: apt-get install chromium`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-background-networking'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage({ acceptDownloads: true, viewport: { width: 1100, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  t.after(() => assert.deepEqual(errors, [], 'the page runs without a script error'));
  await page.goto(url);
  return page;
}

async function signIn(page: Page, key: string): Promise<void> {
  // From the keyboard: the field is found by its label, Enter submits.
  await page.getByLabel('API key').fill(key);
  await page.getByLabel('API key').press('Enter');
  await page.locator('#scopes').waitFor();
}

const text = (page: Page, selector: string): Promise<string> => page.locator(selector).innerText();

describe('serve: the dashboard', () => {
  it('previews a job, starts it on confirmation, and follows it live to 100 % with the API’s numbers', async (t) => {
    const s = await startService(t, 2, SESSIONS);
    const key = await s.key(['jobs:read', 'jobs:write', 'audit:read']);
    const page = await open(t, s.url);
    // The bundle is served from the service itself, with a policy that allows nothing else.
    const home = await fetch(s.url);
    assert.match(home.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'/);
    assert.equal(await page.locator('#jobs').count(), 0);
    assert.equal(await page.evaluate('sessionStorage.getItem("cr-key")'), null);
    await signIn(page, key);
    assert.match(await text(page, '#scopes'), /start and cancel jobs/);

    // A file of ids, sent as an upload.
    await page.getByLabel(/or a file/).setInputFiles({
      name: 'ids.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from(`${[...ids(SESSIONS), ...GHOSTS].join('\n')}\n`),
    });
    await page.getByRole('button', { name: 'Preview' }).click();
    await page.locator('#preview-count').waitFor();
    assert.match(
      await text(page, '#preview-count'),
      new RegExp(`${whole(SESSIONS + GHOSTS.length)} sessions`),
    );
    assert.match(await text(page, '#layers'), /history\s+cleared/);
    const frames = await page.locator('.directives pre').allInnerTexts();
    assert.equal(frames.length, 5);
    assert.equal((JSON.parse(frames[0]!) as { sessionId: string }).sessionId, 'session-1');
    // Previewed, not sent: no job, nothing reached the engine.
    assert.equal(s.emulator.stats().sends, 0);
    assert.deepEqual(((await (await s.call('/v1/jobs', key)).json()) as { jobs: unknown[] }).jobs, []);

    await page
      .getByRole('button', { name: `Confirm: reset ${whole(SESSIONS + GHOSTS.length)} sessions` })
      .click();
    // Followed live: the flow controller while it runs, then 100 %.
    await page.locator('#fc-in-flight', { hasText: '16' }).waitFor({ timeout: 30_000 });
    await page.locator('#percent', { hasText: '100 %' }).waitFor({ timeout: 120_000 });
    await page.locator('#job-title', { hasText: 'failed' }).waitFor({ timeout: 30_000 });
    const { jobs } = (await (await s.call('/v1/jobs', key)).json()) as { jobs: { id: string }[] };
    assert.equal(jobs.length, 1);
    const api = (await (await s.call(`/v1/jobs/${jobs[0]!.id}`, key)).json()) as {
      counts: { total: number; reset: number; verified: number; failed: number; skipped: number };
      latencyMs: { p50: number; p95: number; p99: number };
      errors: Record<string, number>;
    };
    assert.deepEqual(api.counts, {
      total: SESSIONS + GHOSTS.length,
      reset: SESSIONS,
      verified: SESSIONS,
      failed: GHOSTS.length,
      skipped: 0,
    });
    for (const name of ['reset', 'verified', 'failed', 'skipped'] as const)
      assert.equal(await text(page, `#count-${name}`), whole(api.counts[name]), name);
    for (const p of ['p50', 'p95', 'p99'] as const)
      assert.equal(await text(page, `#${p}`), `${oneDecimal(api.latencyMs[p])} ms`, p);
    assert.equal(await page.locator('progress').getAttribute('value'), String(SESSIONS + GHOSTS.length));
    assert.match(await text(page, '#errors'), /CR_ERR_RESET_SESSION_NOT_FOUND\s+3/);
    assert.deepEqual(api.errors, { CR_ERR_RESET_SESSION_NOT_FOUND: 3 });
    // The plot was fed by the job's event stream while it ran.
    const points = Number(await page.locator('.chart [data-points]').getAttribute('data-points'));
    assert.ok(points >= 1, `the plot has ${points} points`);
    assert.equal(await page.locator('.chart canvas').count(), 1);
    // The jobs list shows it, finished.
    await page.locator('#jobs tr', { hasText: jobs[0]!.id }).filter({ hasText: 'failed' }).waitFor();

    // The failed sessions: listed, and downloaded as the outcomes route gives them.
    await page
      .locator('#failed-sessions tbody tr')
      .nth(GHOSTS.length - 1)
      .waitFor();
    assert.deepEqual(
      (await page.locator('#failed-sessions tbody td:first-child').allInnerTexts()).sort(),
      GHOSTS,
    );
    const dir = mkdtempSync(join(tmpdir(), 'cr-dashboard-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: /Download the failed sessions/ }).click(),
    ]);
    await download.saveAs(join(dir, 'failed.jsonl'));
    const expected = await (await s.call(`/v1/jobs/${jobs[0]!.id}/outcomes?outcome=failed`, key)).text();
    assert.equal(readFileSync(join(dir, 'failed.jsonl'), 'utf8'), expected);
    assert.equal(expected.trim().split('\n').length, GHOSTS.length);

    // The audit chain, verified from the page, as the API verifies it.
    await page.getByRole('button', { name: 'Verify the audit chain' }).click();
    await page.locator('#audit-result', { hasText: 'intact' }).waitFor({ timeout: 30_000 });
    const verified = (await (await s.call('/v1/audit/verify', key)).json()) as { records: number };
    assert.equal(verified.records, SESSIONS + GHOSTS.length);
    assert.match(await text(page, '#audit-result'), new RegExp(`${whole(verified.records)} records`));

    await page.screenshot({ path: join(dir, 'dashboard.png'), fullPage: true });
    assert.ok(statSync(join(dir, 'dashboard.png')).size > 0);
    // The key is kept for the tab: a reload shows the job again without asking.
    await page.reload();
    await page.locator('#job-title', { hasText: jobs[0]!.id }).waitFor({ timeout: 30_000 });
    await page.getByRole('button', { name: 'Sign out' }).click();
    assert.equal(await page.evaluate('sessionStorage.getItem("cr-key")'), null);
    await page.getByLabel('API key').waitFor();
  });

  it('tells a key with fewer scopes what it lacks: it previews but cannot start, nor verify the audit', async (t) => {
    const s = await startService(t);
    const reader = await s.key(['jobs:read']);
    const page = await open(t, s.url);
    await page.getByLabel('API key').fill('crk_not-a-key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'refused' }).waitFor();
    await signIn(page, reader);
    const scopes = await text(page, '#scopes');
    assert.match(scopes, /lacks jobs:write \(start and cancel jobs\), audit:read \(verify the audit chain\)/);
    await page.getByLabel('Session ids, one a line').fill(ids(3).join('\n'));
    await page.getByLabel('Keep the history').check();
    await page.getByRole('button', { name: 'Preview' }).click();
    await page.locator('#preview-count', { hasText: '3 sessions' }).waitFor();
    assert.match(await text(page, '#layers'), /history\s+kept, as asked/);
    assert.match(await text(page, '#layers'), /variables\s+cleared/);
    assert.equal(await page.getByRole('button', { name: /Confirm/ }).count(), 0);
    assert.match(await text(page, 'main'), /lacks jobs:write: it can preview a job but not start it/);
    assert.equal(await page.getByRole('button', { name: 'Verify the audit chain' }).count(), 0);
    assert.match(await text(page, 'main'), /lacks audit:read: it cannot verify the audit chain/);
    assert.equal(s.emulator.stats().sends, 0);
  });
});
