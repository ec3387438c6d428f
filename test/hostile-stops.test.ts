/**
 * Every run stops: with its summary and a documented exit code, however the engine answers, and within
 * a bounded time on SIGINT or SIGTERM, whatever the run waits on.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI, type CliResult, cliEnv, parseJsonLines, runCli } from './helpers/cli.js';
import { type HostileServer, hostileHttp, rateLimited, restRows } from './helpers/hostile-servers.js';
import { withDeadline } from './helpers/ws.js';

const KEY = 'hostile-key-5d1e';
let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'cognigy-reset-stops-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const restArgs = (apiUrl: string, ...more: string[]): string[] => [
  'reset',
  '--transport',
  'cognigy-rest',
  '--api-url',
  apiUrl,
  '--json',
  '--no-progress',
  ...more,
];

describe('a REST run against an API that answers 429 above its rate', () => {
  // Without a state file nothing but the requests holds the process: when every request backs off at
  // once, only the backoff's own timers keep the run alive.
  for (const [name, retryAfter] of [
    ['Retry-After: 1', () => '1'],
    ['no Retry-After', () => undefined],
    ['an HTTP-date Retry-After', () => new Date(Date.now() + 1500).toUTCString()],
  ] as const) {
    it(`finishes every session with its summary (${name})`, async (t) => {
      const api = await hostileHttp(rateLimited(40, retryAfter));
      t.after(() => api.close());
      const file = join(dir, `rows-${api.url.split(':').pop()}.csv`);
      writeFileSync(file, restRows(120));
      const result = await runCli(
        restArgs(api.url, '--rate', '1000', '--no-audit', '--from-file', file, '--max-attempts', '30'),
        { COGNIGY_API_KEY: KEY },
        { timeoutMs: 90_000 },
      );
      assert.equal(result.code, 0, result.stderr);
      const { sessions, summary } = parseJsonLines(result.stdout);
      assert.equal(sessions.length, 120);
      assert.ok(summary !== undefined, 'a summary line');
      assert.equal(summary['total'], 120);
      assert.equal(summary['reset'], 120);
      assert.ok(summary['retried'] > 0, 'the API did answer 429');
    });
  }
});

describe('a run that can no longer settle', () => {
  it('ends with CR_ERR_CLI_STALLED, exit 1 and its summary, not Node’s silent exit 13', async (t) => {
    const api = await hostileHttp((_req, res) => res.writeHead(200).end('{}'));
    t.after(() => api.close());
    const file = join(dir, 'stalled.csv');
    writeFileSync(file, restRows(5));
    // A request that never settles and holds nothing: the event loop runs dry under the run.
    const never = 'data:text/javascript,globalThis.fetch=()=>new%20Promise(()=>{})';
    const result = await runCli(restArgs(api.url, '--no-audit', '--from-file', file), {
      COGNIGY_API_KEY: KEY,
      NODE_OPTIONS: `--import=${never}`,
    });
    assert.equal(result.code, 1, result.stderr);
    const { summary } = parseJsonLines(result.stdout);
    assert.equal(summary?.['fatal']?.code, 'CR_ERR_CLI_STALLED');
    assert.match(result.stderr, /cognigy-reset: CR_ERR_CLI_STALLED: /);
  });
});

interface OpenRun {
  done: Promise<CliResult>;
  signal(name: NodeJS.Signals): void;
  write(text: string): void;
  stderrHas(pattern: RegExp): Promise<void>;
}

/** The CLI with its stdin left open (and idle unless written to). */
function openCli(args: string[], env: Record<string, string>): OpenRun {
  const child = spawn(process.execPath, [CLI, ...args], { env: cliEnv(env), stdio: 'pipe' });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  child.stdin.on('error', () => undefined);
  const done = new Promise<CliResult>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return {
    done,
    signal: (name) => child.kill(name),
    write: (text) => child.stdin.write(text),
    stderrHas: (pattern) =>
      withDeadline(
        new Promise<void>((resolve, reject) => {
          const check = (): void => {
            if (pattern.test(stderr)) resolve();
          };
          child.stderr.on('data', check);
          child.once('close', () => reject(new Error(`exited first:\n${stderr}`)));
          check();
        }),
        30_000,
        `stderr ${pattern}`,
      ),
  };
}

describe('SIGINT and SIGTERM stop a run whatever it waits on', () => {
  let api: HostileServer;
  before(async () => {
    api = await hostileHttp((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}'),
    );
  });
  after(() => api.close());

  const started = /reset run starting/;
  const stdinArgs = (): string[] =>
    restArgs(api.url, '--no-audit', '--from-file', '-', '--log-level', 'info');

  for (const name of ['SIGINT', 'SIGTERM'] as const) {
    it(`${name} stops a run reading an idle stdin: exit 130 with the summary`, async (t) => {
      const run = openCli(stdinArgs(), { COGNIGY_API_KEY: KEY });
      t.after(() => run.signal('SIGKILL'));
      run.write(`${restRows(3)}`);
      await run.stderrHas(started);
      run.signal(name);
      const result = await withDeadline(run.done, 20_000, 'the run to stop');
      assert.equal(result.code, 130, result.stderr);
      const { summary } = parseJsonLines(result.stdout);
      assert.equal(summary?.['interrupted'], true);
      assert.equal(summary?.['total'], 3);
    });
  }

  it('SIGTERM stops a run reading a line that never ends', async (t) => {
    const run = openCli(stdinArgs(), { COGNIGY_API_KEY: KEY });
    t.after(() => run.signal('SIGKILL'));
    await run.stderrHas(started);
    // Megabytes of one line, still coming when the signal arrives.
    const chunk = 'x'.repeat(256 * 1024);
    const feeding = setInterval(() => run.write(chunk), 5);
    t.after(() => clearInterval(feeding));
    await new Promise((resolve) => setTimeout(resolve, 300));
    run.signal('SIGTERM');
    const result = await withDeadline(run.done, 20_000, 'the run to stop');
    clearInterval(feeding);
    assert.equal(result.code, 130, result.stderr);
    assert.equal(parseJsonLines(result.stdout).summary?.['interrupted'], true);
  });

  it('SIGINT stops a run reading a device that never ends (--from-file /dev/zero)', async (t) => {
    const run = openCli(restArgs(api.url, '--no-audit', '--from-file', '/dev/zero', '--log-level', 'info'), {
      COGNIGY_API_KEY: KEY,
    });
    t.after(() => run.signal('SIGKILL'));
    await run.stderrHas(started);
    run.signal('SIGINT');
    const result = await withDeadline(run.done, 20_000, 'the run to stop');
    assert.equal(result.code, 130, result.stderr);
    assert.equal(parseJsonLines(result.stdout).summary?.['interrupted'], true);
  });
});
