/**
 * Runs every benchmark in turn, each in its own process (they start their own emulators), and prints
 * their output: `npm run bench`.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BENCHES = [
  'emulator',
  'reset-cli',
  'audit-overhead',
  'webhook-overhead',
  'cpu-per-reset',
  'rss-million',
  'flow-control',
  'selectors',
  'store-postgres',
  'serve',
  'replicas',
];

let failed = 0;
for (const name of BENCHES) {
  process.stdout.write(`== ${name}\n`);
  const script = fileURLToPath(new URL(`./${name}.js`, import.meta.url));
  const result = spawnSync(process.execPath, [script], { stdio: 'inherit' });
  if (result.status !== 0) {
    failed++;
    process.stdout.write(`${name} failed (exit ${result.status ?? result.signal})\n`);
  }
}
process.exitCode = failed === 0 ? 0 : 1;
