/**
 * A large upload to `serve` (a real child process): 100,000 CSV rows, about 400 MB, streamed to the
 * service, spooled and checked by the row parser, and run as a dry-run job. The service's resident memory
 * (its /metrics) stays far below the upload's size: nothing holds the upload whole.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli, startCli, waitForOutput } from './helpers/cli.js';
import { parseMetrics } from './helpers/metrics.js';
import { withDeadline } from './helpers/ws.js';

const ROWS = 100_000;
/** A wide column: the upload is large next to the memory the service may grow by. */
const NOTE = 'x'.repeat(3980);
const MiB = 1024 * 1024;
/**
 * Under half the upload: a service that held it whole could not pass this, and one that streams it keeps a
 * margin for the allocator's and the collector's lag on a loaded machine, and for the job thread's heap,
 * which grows with the job's run (not with the upload) apart from the heap that took the upload.
 */
const GROWTH_BOUND = 190 * MiB;

function csv(): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let row = 0;
  return new ReadableStream({
    pull(controller) {
      if (row === 0) controller.enqueue(encoder.encode('sessionId,note\n'));
      if (row >= ROWS) {
        controller.close();
        return;
      }
      const lines: string[] = [];
      for (const end = Math.min(ROWS, row + 1000); row < end; row++)
        lines.push(`session-${row + 1},${NOTE}\n`);
      controller.enqueue(encoder.encode(lines.join('')));
    },
  });
}

describe('serve: a large upload', () => {
  it('streams 100,000 CSV rows (about 400 MB) into a job, its memory growing far less than the upload', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'cr-serve-upload-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const state = join(dir, 'state.sqlite');
    const server = startCli(['serve', '--emulator', '--sessions', '10', '--port', '0', '--state', state], {});
    t.after(() => server.child.kill('SIGKILL'));
    await waitForOutput(server, (out) => out.includes('\n'));
    const { url } = JSON.parse(server.stdout().split('\n')[0]!) as { url: string };
    const { key } = JSON.parse(
      (await runCli(['keys', 'create', '--scope', 'jobs:read,jobs:write', '--state', state], {})).stdout,
    ) as { key: string };
    const auth = { authorization: `Bearer ${key}` };
    const rss = async (): Promise<number> =>
      parseMetrics(await (await fetch(`${url}/metrics`)).text()).get('process_resident_memory_bytes')!;
    const upload = (body: RequestInit['body']): Promise<Response> =>
      fetch(`${url}/v1/jobs?tenant=demo&dryRun=true`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'text/csv' },
        body,
        duplex: 'half',
      });
    const finish = async (id: string): Promise<Record<string, unknown>> => {
      const events = await withDeadline(
        (await fetch(`${url}/v1/jobs/${id}/events`, { headers: auth })).text(),
        120_000,
        'the job to finish',
      );
      return JSON.parse(events.trim().split('\n').pop()!.slice(6)) as Record<string, unknown>;
    };
    // A small job first: what the first upload loads once is not counted as growth.
    const warm = (await (await upload('sessionId\nsession-1\n')).json()) as { id: string };
    await finish(warm.id);
    const before = await rss();

    const res = await upload(csv());
    const job = (await res.json()) as { id: string; counts: { total: number } };
    assert.equal(res.status, 201, JSON.stringify(job));
    assert.equal(job.counts.total, ROWS);
    const afterUpload = await rss();
    const last = await finish(job.id);
    assert.equal(last['state'], 'succeeded', JSON.stringify(last));
    assert.equal(last['done'], ROWS);
    const afterRun = await rss();
    const growth = Math.max(afterUpload, afterRun) - before;
    t.diagnostic(
      `rss before ${Math.round(before / MiB)} MiB, after the upload +${Math.round((afterUpload - before) / MiB)}, after the run +${Math.round((afterRun - before) / MiB)}`,
    );
    assert.ok(growth < GROWTH_BOUND, `the service grew by ${Math.round(growth / MiB)} MiB`);
    server.child.kill('SIGTERM');
    assert.equal((await withDeadline(server.done, 60_000, 'serve to stop')).code, 0);
  });
});
