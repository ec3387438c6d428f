/**
 * The dashboard in a real browser (Debian's Chromium driven by playwright-core, never a browser download):
 * sign in with a key, see the jobs list, follow a job live to 100 %, numbers as the API gives them.
 */
import * as assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { ids, json, startService } from './helpers/service.js';

const CHROMIUM = '/usr/bin/chromium';

describe('serve: the dashboard', () => {
  it('signs in with a key kept for the tab, lists jobs, and follows one live to 100 %', async (t) => {
    // Never skipped: .ci/run installs Debian's Chromium; without it this test fails and says why.
    assert.ok(existsSync(CHROMIUM), `no ${CHROMIUM}: apt-get install chromium`);
    const s = await startService(t, 2, 2000);
    const key = await s.key(['jobs:read', 'jobs:write']);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-background-networking'],
    });
    t.after(() => browser.close());
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    t.after(() => assert.deepEqual(errors, [], 'the page runs without a script error'));
    await page.goto(s.url);
    // Before signing in, nothing is listed and no key is kept.
    assert.equal(await page.locator('#jobs tr').count(), 0);
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const created = (await (
      await s.call('/v1/jobs', key, json({ tenant: 'demo', sessions: ids(2000) }))
    ).json()) as { id: string };
    const link = page.getByRole('link', { name: created.id });
    await link.waitFor({ timeout: 30_000 });
    await link.click();
    await page.locator('#summary', { hasText: '100 %' }).waitFor({ timeout: 60_000 });
    await page.locator('#job-title', { hasText: 'succeeded' }).waitFor({ timeout: 30_000 });
    const api = (await (await s.call(`/v1/jobs/${created.id}`, key)).json()) as {
      counts: { reset: number; verified: number; failed: number };
    };
    const summary = await page.locator('#summary').innerText();
    assert.match(
      summary,
      new RegExp(`reset ${api.counts.reset}, verified ${api.counts.verified}, failed ${api.counts.failed}`),
    );
    assert.equal(api.counts.reset, 2000);
    assert.equal(await page.locator('progress').getAttribute('value'), '2000');
    const dir = mkdtempSync(join(tmpdir(), 'cr-dashboard-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    await page.screenshot({ path: join(dir, 'dashboard.png'), fullPage: true });
    assert.ok(existsSync(join(dir, 'dashboard.png')));
    // The key is kept for the tab: a reload lists the jobs again without asking.
    await page.reload();
    await page.getByRole('link', { name: created.id }).waitFor({ timeout: 30_000 });
    await page.getByRole('button', { name: 'Sign out' }).click();
    assert.equal(await page.evaluate('sessionStorage.getItem("cr-key")'), null);
  });
});
