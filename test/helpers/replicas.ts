/** `serve` replicas as child processes, and reading a job's view from them with deadlines. */
import type { CliRun } from './cli.js';

export interface Replica {
  /** 1, 2, 3 … in start order. */
  n: number;
  run: CliRun;
  url: string;
  pid: number;
}

export interface JobView {
  id: string;
  state: string;
  counts: { total: number; reset: number; verified: number; failed: number; skipped: number };
  /** Where its chunks stand across every replica: `owners` are those holding a live claim now. */
  chunks?: { total: number; done: number; leased: number; owners: string[] };
  [field: string]: unknown;
}

export const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

/** The first line of a child's stdout, parsed: its `listening` line. */
export function firstLine(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout.split('\n')[0]!) as Record<string, unknown>;
}

/** JSON Lines, parsed. */
export function lines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Polls the job's view on `replica` until `until` holds; rejects at the deadline with the last view. */
export async function pollJob(
  replica: Replica,
  auth: Record<string, string>,
  id: string,
  until: (view: JobView) => boolean | Promise<boolean>,
  ms = 30_000,
): Promise<JobView> {
  const deadline = Date.now() + ms;
  let last: JobView | undefined;
  while (Date.now() < deadline) {
    const res = await fetch(`${replica.url}/v1/jobs/${id}`, { headers: auth });
    if (res.status !== 200) throw new Error(`GET /v1/jobs/${id} answered ${res.status}: ${await res.text()}`);
    last = (await res.json()) as JobView;
    if (await until(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`job ${id} on replica ${replica.n}: not there after ${ms} ms: ${JSON.stringify(last)}`);
}

/** A replica's log lines at warn or above, for an assertion's message: what went wrong where. */
export function warnings(replica: Replica): string {
  const found = replica.run
    .stderr()
    .split('\n')
    .filter((line) => /"level":(4|5|6)\d/.test(line));
  return `replica ${replica.n}: ${found.slice(-20).join('\n') || '(no warnings)'}`;
}
