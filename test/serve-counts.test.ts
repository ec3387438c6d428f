/**
 * A service job's counts as a status read gives them: a dry run keeps no ledger, so its counts come from
 * the outcome lines its chunks hold, where a session a resumed run listed again counts once, as the
 * outcomes route lists it.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { liveCounts } from '../src/serve/job-counts.js';
import { newJob } from '../src/serve/job-model.js';
import { openStore } from '../src/store/index.js';

const line = (sessionId: string, code: string | null = null): string =>
  `${JSON.stringify({ sessionId, outcome: 'skipped', verified: false, latencyMs: 0, attempts: 0, error: code === null ? null : { code, message: 'x' } })}\n`;

describe('serve: a job’s counts', () => {
  it('counts a dry run’s session once when a resumed run listed it again, and a repeat of a session apart', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'cr-serve-counts-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const store = await openStore(join(dir, 'state.sqlite'));
    t.after(() => store.close());
    const now = new Date().toISOString();
    const record = {
      id: 'job_dry',
      tenant: 'demo',
      state: 'running',
      createdAt: now,
      updatedAt: now,
      request: {
        fields: { tenant: 'demo', dryRun: true },
        bot: 'b',
        actor: 'key:k',
        total: 4,
        required: [],
        chunks: 1,
        duplicates: 1,
      },
      progress: {},
      idempotency: null,
    };
    await store.createServiceJob(record);
    await store.addJobChunks('job_dry', [
      { chunkNo: 0, firstIndex: 0, count: 4, targets: '{"sessionId":"s1"}\n' },
    ]);
    assert.ok(await store.claimJobChunk({ owner: 'first', leaseMs: 0 }));
    // The first run listed two sessions, then stopped (its claim lapsed); the next run listed all four.
    assert.equal(
      await store.heartbeatJobChunk('job_dry', 0, {
        owner: 'first',
        leaseMs: 0,
        outcomes: line('s1') + line('s2'),
      }),
      true,
    );
    assert.ok(await store.claimJobChunk({ owner: 'second', leaseMs: 60_000 }));
    const again = line('s1') + line('s2') + line('s3') + line('s1', 'CR_ERR_RESET_DUPLICATE');
    assert.equal(
      await store.finishJobChunk('job_dry', 0, { owner: 'second', outcomes: again, error: null }),
      true,
    );
    const { counts, errors } = await liveCounts(store, newJob((await store.getServiceJob('job_dry'))!));
    assert.deepEqual(counts, { total: 4, reset: 0, verified: 0, failed: 0, skipped: 4 });
    assert.deepEqual(errors, { CR_ERR_RESET_DUPLICATE: 1 });
  });
});
