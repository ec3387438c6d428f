/** Runs the CLI as a real child process; every wait has a deadline. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { withDeadline } from './ws.js';

export const CLI = fileURLToPath(new URL('../../../bin/cognigy-reset', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliRun {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  done: Promise<CliResult>;
}

/** A clean environment: nothing of the developer's COGNIGY_* settings leaks into a test. */
export function cliEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('COGNIGY_') && key !== 'TARGET_SESSION_ID') env[key] = value;
  }
  return { ...env, ...extra };
}

export function startCli(
  args: string[],
  env: Record<string, string>,
  stdin?: string | Buffer,
  cwd?: string,
): CliRun {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: cliEnv(env),
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(cwd === undefined ? {} : { cwd }),
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.on('error', () => undefined);
  if (stdin !== undefined) child.stdin.end(stdin);
  else child.stdin.end();
  const done = new Promise<CliResult>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, stdout: () => stdout, stderr: () => stderr, done };
}

export function runCli(
  args: string[],
  env: Record<string, string>,
  options: { stdin?: string | Buffer; timeoutMs?: number; cwd?: string } = {},
): Promise<CliResult> {
  const run = startCli(args, env, options.stdin, options.cwd);
  return withDeadline(run.done, options.timeoutMs ?? 60_000, `cognigy-reset ${args[0] ?? ''}`).catch(
    (err: unknown) => {
      run.child.kill('SIGKILL');
      throw err;
    },
  );
}

/** Resolves once `predicate(stdout)` holds; rejects at the deadline or if the process exits first. */
export function waitForOutput(
  run: CliRun,
  predicate: (stdout: string) => boolean,
  ms = 30_000,
): Promise<void> {
  return waitOn(run, 'stdout', predicate, ms);
}

/** Resolves once `predicate(stderr)` holds (a log line); rejects at the deadline or if the process exits first. */
export function waitForStderr(
  run: CliRun,
  predicate: (stderr: string) => boolean,
  ms = 30_000,
): Promise<void> {
  return waitOn(run, 'stderr', predicate, ms);
}

function waitOn(
  run: CliRun,
  stream: 'stdout' | 'stderr',
  predicate: (text: string) => boolean,
  ms: number,
): Promise<void> {
  return withDeadline(
    new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (predicate(run[stream]())) {
          run.child[stream]!.off('data', check);
          resolve();
        }
      };
      run.child[stream]!.on('data', check);
      run.child.once('close', () => reject(new Error(`exited before the output appeared:\n${run.stderr()}`)));
      check();
    }),
    ms,
    'CLI output',
  );
}

/** Parses JSON Lines output: the per-session objects and the summary. */
export function parseJsonLines(stdout: string): {
  sessions: Record<string, any>[];
  summary: Record<string, any> | undefined;
} {
  const sessions: Record<string, any>[] = [];
  let summary: Record<string, any> | undefined;
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    const parsed = JSON.parse(line) as Record<string, any>;
    if ('summary' in parsed) summary = parsed['summary'];
    else sessions.push(parsed);
  }
  return { sessions, summary };
}

/**
 * The output and end of a CLI child spawned some other way (as another user, through a shell), with
 * stdout and stderr piped: it is killed if it misses the deadline.
 */
export function collectRun(child: ChildProcess, ms: number, what: string): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const done = new Promise<CliResult>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return withDeadline(done, ms, what).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
}
