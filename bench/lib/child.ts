/** Starts a server as a child process and waits for its one JSON "listening" line. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface ChildServer {
  child: ChildProcess;
  info: Record<string, string>;
  stop(): Promise<void>;
}

export async function startChild(
  command: string,
  args: string[],
  timeoutMs = 15_000,
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<ChildServer> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'], ...options });
  const lines = createInterface({ input: child.stdout });
  const info = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${args.join(' ')}: not listening after ${timeoutMs} ms`)),
      timeoutMs,
    );
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
    lines.on('line', (line) => {
      const parsed = JSON.parse(line) as Record<string, string>;
      if (parsed['event'] === 'listening') {
        clearTimeout(timer);
        resolve(parsed);
      }
    });
  });
  return {
    child,
    info,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
