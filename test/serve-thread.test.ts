/**
 * The service's jobs in a thread of their own (`JobThread`, as `serve` runs them): a job made through the
 * API runs there, on the thread's own connection to the store; a thread that dies of a defect is replaced
 * by another, as another owner, and the service's jobs go on running.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { JobThread } from '../src/serve/job-thread.js';
import type { FixtureData } from './fixtures/job-thread.js';
import { followToEnd, ids, json, startService } from './helpers/service.js';
import { withDeadline } from './helpers/ws.js';

describe('serve: the job thread', () => {
  it('runs a job made through the API; a thread that dies is replaced, and the next job succeeds', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'cr-serve-thread-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    let restarted!: () => void;
    const restart = new Promise<void>((resolve) => (restarted = resolve));
    const lines: string[] = [];
    const log = pino(
      { level: 'info' },
      {
        write(line: string) {
          lines.push(line);
          if (line.includes('job thread exited: starting another')) restarted();
        },
      },
    );
    let thread: JobThread | undefined;
    const service = await startService(t, 2, 600, 600, {
      runner: (where) => {
        const data: FixtureData = { ...where, crashOnce: join(dir, 'crashed') };
        thread = new JobThread({ entry: new URL('./fixtures/job-thread.js', import.meta.url), data, log });
        return thread;
      },
    });
    await withDeadline(thread!.ready(), 30_000, 'the job thread to start');
    const first = thread!.owner;
    const key = await service.key(['jobs:read', 'jobs:write']);

    // The first thread dies of a defect on a metrics request; the service says so and starts another.
    await thread!.metrics();
    await withDeadline(restart, 30_000, 'the job thread to be restarted');
    const made = await service.call('/v1/jobs', key, json({ tenant: 'demo', sessions: ids(300) }));
    assert.equal(made.status, 201);
    const { id } = (await made.json()) as { id: string };
    const done = await followToEnd(service, key, id);
    assert.equal(done['state'], 'succeeded', JSON.stringify(done));
    assert.deepEqual(done['counts'], { total: 300, reset: 300, verified: 300, failed: 0, skipped: 0 });
    assert.notEqual(thread!.owner, first, 'the new thread claims as another owner');
    const exited = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.ok(exited.some((entry) => entry['msg'] === 'job thread failed' && entry['level'] === 50));

    // A second job in the same thread: the thread kept running after the first.
    const again = await service.call(
      '/v1/jobs',
      key,
      json({ tenant: 'demo', sessions: ids(600).slice(300) }),
    );
    const second = await followToEnd(service, key, ((await again.json()) as { id: string }).id);
    assert.equal(second['state'], 'succeeded', JSON.stringify(second));
    assert.equal((second['counts'] as { verified: number }).verified, 300);
  });
});
