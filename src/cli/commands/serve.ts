/**
 * `cognigy-reset serve`: the control API and dashboard (`serve-run.ts`, loaded only when it runs: the
 * other commands start without the web server's modules).
 */
import { Command, Option } from 'commander';
import { LOG_LEVELS } from '../logger.js';
import { integerIn } from '../parse.js';
import { STATE_HELP, STORE_HELP } from '../store-flags.js';
import type { ServeFlags } from './serve-run.js';

export function serveCommand(): Command {
  return new Command('serve')
    .description('serve the control API and dashboard; prints {"event":"listening","url"} when ready')
    .option('--host <host>', 'the address to listen on', '127.0.0.1')
    .option('--port <port>', 'the port (0: any free port)', integerIn(0, 65_535), 0)
    .option('--store <url>', STORE_HELP)
    .option('--state <path>', STATE_HELP)
    .option('--config <file>', "JSON: each tenant's engine, and where its secrets come from")
    .option('--emulator', 'serve an in-process emulator as tenant demo, bot demo-bot', false)
    .option('--sessions <n>', 'with --emulator: seed session-1 … session-N', integerIn(0, 10_000_000), 2000)
    .option(
      '--lease <seconds>',
      "how long this replica's claim on a chunk of a job lasts without a heartbeat: another replica takes it over after",
      integerIn(3, 3600),
      30,
    )
    .addOption(new Option('--log-level <level>', 'log level (stderr)').choices(LOG_LEVELS).default('info'))
    .action(async (flags: ServeFlags) => {
      const { serve } = await import('./serve-run.js');
      await serve(flags);
    });
}
