/** The `cognigy-reset` command line. Commands are thin; exit codes are mapped in `exit-codes.ts`. */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { emulatorCommand } from './commands/emulator.js';
import { resetCommand, STALLED } from './commands/reset.js';
import { auditCommand } from './commands/audit.js';
import { sessionsCommand } from './commands/sessions.js';
import { keysCommand } from './commands/keys.js';
import { serveCommand } from './commands/serve.js';
import { CognigyResetError, type ErrorCode } from '../errors.js';
import { errorLine, EXIT_FAILED, EXIT_USAGE, exitCodeFor } from './exit-codes.js';
import { guardStdoutOnSignal, stdoutAbandoned, stdoutGone } from './stdout-gone.js';
import { onceEach } from './parse.js';

/** Node's exit code for a top-level await that never settled. */
const NODE_UNSETTLED_AWAIT = 13;

/** The stable code of a command line commander could not parse. */
function usageCode(commanderCode: string): ErrorCode {
  switch (commanderCode) {
    case 'commander.invalidArgument':
      return 'CR_ERR_OPT_INVALID';
    case 'commander.optionMissingArgument':
    case 'commander.missingMandatoryOptionValue':
    case 'commander.missingArgument':
      return 'CR_ERR_OPT_MISSING';
    default:
      return 'CR_ERR_CLI_USAGE';
  }
}

/** The longest stretch of an argument a message quotes. */
const QUOTED_MAX = 40;

/**
 * Commander's message, safe to print: the argument it quotes raw (a newline in it would forge a line, a
 * long one would flood the terminal) is quoted as JSON and cut short, and no control character is left.
 */
export function usageMessage(message: string): string {
  const text = message.replace(/^error: /, '');
  const invalid = /^option '([^']*)' argument '([\s\S]*)' is invalid\. ([\s\S]*)$/.exec(text);
  const shown = invalid
    ? `option '${invalid[1]}' argument ${JSON.stringify(cut(invalid[2]!))} is invalid. ${invalid[3]}`
    : text;
  // eslint-disable-next-line no-control-regex
  return shown.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

function cut(value: string): string {
  return value.length > QUOTED_MAX ? `${value.slice(0, QUOTED_MAX)}…` : value;
}

function program(): Command {
  const { version } = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  const root = new Command('cognigy-reset')
    .description('Reset NICE Cognigy bot sessions: validated, acknowledged, verified and audited.')
    .version(version, '-V, --version', 'print the version')
    .exitOverride();
  root.addCommand(resetCommand());
  root.addCommand(emulatorCommand());
  root.addCommand(auditCommand());
  root.addCommand(sessionsCommand());
  root.addCommand(serveCommand());
  root.addCommand(keysCommand());
  const override = (command: Command): void => {
    // Commander's own message is printed by main(), with a stable code like every other error.
    command.exitOverride().configureOutput({ outputError: () => undefined });
    for (const sub of command.commands) override(sub);
  };
  override(root);
  onceEach(root);
  return root;
}

async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version asked for are successful exits; help shown for a missing command, and every
      // other commander error, are usage errors.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      if (err.code === 'commander.help' && err.exitCode === 0) return 0;
      if (err.code === 'commander.help') {
        process.stderr.write(errorLine(new CognigyResetError('CR_ERR_CLI_USAGE', 'a command is required')));
        return EXIT_USAGE;
      }
      process.stderr.write(errorLine(new CognigyResetError(usageCode(err.code), usageMessage(err.message))));
      process.stderr.write('(run with --help for usage)\n');
      return EXIT_USAGE;
    }
    process.stderr.write(errorLine(err));
    return exitCodeFor(err);
  }
}

// A reader that goes away (`| head`) is not an error of ours: never crash; the command stops its work.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') process.stderr.write(`cognigy-reset: stdout: ${err.code ?? err.message}\n`);
  stdoutGone.abort();
});

// Node ends a process whose top-level await never settled with exit 13, silently. A command that ends
// that way gets a coded line and a documented exit code instead (`reset` prints its summary before).
process.on('exit', () => {
  if (process.exitCode !== NODE_UNSETTLED_AWAIT) return;
  process.stderr.write(errorLine(new CognigyResetError('CR_ERR_CLI_STALLED', STALLED)));
  process.exitCode = EXIT_FAILED;
});

// A reader that never reads cannot hold a command that was told to stop.
guardStdoutOnSignal(process.stdout);

process.exitCode = await main(process.argv);
// What an abandoned stdout still holds would keep the process open for ever: once it is given up (now or
// later), the process ends.
const exitIfAbandoned = (): void => {
  if (stdoutAbandoned()) process.exit();
};
exitIfAbandoned();
stdoutGone.signal.addEventListener('abort', exitIfAbandoned, { once: true });
