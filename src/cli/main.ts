/** The `cognigy-reset` command line. Commands are thin; exit codes are mapped in `exit-codes.ts`. */
import { Command, CommanderError } from 'commander';
import { emulatorCommand } from './commands/emulator.js';
import { resetCommand } from './commands/reset.js';
import { auditCommand } from './commands/audit.js';
import { errorLine, EXIT_USAGE, exitCodeFor } from './exit-codes.js';
import { stdoutGone } from './stdout-gone.js';

function program(): Command {
  const root = new Command('cognigy-reset')
    .description('Reset NICE Cognigy bot sessions: validated, acknowledged, verified and audited.')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  root.addCommand(resetCommand());
  root.addCommand(emulatorCommand());
  root.addCommand(auditCommand());
  const override = (command: Command): void => {
    command.exitOverride();
    for (const sub of command.commands) override(sub);
  };
  override(root);
  return root;
}

async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are successful exits; every other commander error is a usage error.
      if (
        err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.version' ||
        err.code === 'commander.help'
      ) {
        return 0;
      }
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

process.exitCode = await main(process.argv);
