// The `hearth` command: everything the extension does, scriptable, with --json.
import { Command, CommanderError } from 'commander';
import { join } from 'node:path';
import { BrokerError } from '../client/api';
import { lastConnection, UsageError } from './context';
import { EXIT } from './exit-codes';
import { withGlobalHelp } from './help';
import { registerJobCommands } from './jobs';
import { registerKernelCommands } from './kernels';
import { registerLeaseCommands } from './leases';
import { registerLedgerCommands } from './ledger';
import { registerPushCommand } from './push';
import { registerSecretCommands } from './secrets';
import { registerServerCommands } from './up';
import { VERSION } from './version';
import { visibleLines } from '../shared/terminal-text';

export function buildProgram(): Command {
  const program = new Command('hearth')
    .description('Run Python on GPUs that others offer: a broker, worker agents, and this client.')
    .version(VERSION)
    .option('--broker <url>', 'broker URL (else HEARTH_BROKER_URL, else config.json)')
    .option('--token <token>', 'access token (else HEARTH_TOKEN, else config.json)')
    .option('--data-dir <dir>', 'where hearth keeps its state (else HEARTH_DATA_DIR, else ~/.hearth)')
    .option('--json', 'print data as JSON (on stdout; everything else goes to stderr)')
    .showHelpAfterError('(add --help for usage and examples)')
    .exitOverride();
  registerServerCommands(program);
  registerLeaseCommands(program);
  registerLedgerCommands(program);
  registerJobCommands(program);
  registerKernelCommands(program);
  registerSecretCommands(program);
  registerPushCommand(program);
  return withGlobalHelp(program);
}

async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; every other parse error is a usage error.
      process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return;
    }
    if (err instanceof BrokerError) {
      process.stderr.write(`hearth: ${visibleLines(err.message)}\n`);
      if (err.status === 401) process.stderr.write(tokenAdvice());
      // The message already says the first issue; the rest follow, each once.
      for (const i of err.issues ?? []) if (!err.message.includes(i.message)) process.stderr.write(`  ${visibleLines(i.path)}: ${visibleLines(i.message)}\n`);
      process.exitCode = err.code === 'unreachable' ? EXIT.unreachable : err.code === 'bad_url' ? EXIT.usage : EXIT.error;
      return;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`hearth: ${visibleLines(err.message)}\n`);
      process.exitCode = EXIT.usage;
      return;
    }
    // Stacks are for whoever debugs hearth itself; a person gets the message.
    const e = err as Error;
    process.stderr.write(`hearth: ${visibleLines(process.env.HEARTH_DEBUG ? (e.stack ?? String(e)) : (e.message ?? String(e)))}\n`);
    process.exitCode = EXIT.error;
  }
}

/**
 * A refused token: where it came from, and how to get one that works without needing one that
 * works (`hearth token create` does): the broker's admin, or on a broker of one's own its
 * admin-token file.
 */
function tokenAdvice(): string {
  const c = lastConnection;
  if (!c) return '';
  const from = c.tokenFrom === '--token' ? 'the --token flag' : c.tokenFrom === 'HEARTH_TOKEN' ? 'the HEARTH_TOKEN environment variable' : `${c.tokenFrom ?? 'config.json'}`;
  const other = c.tokenFrom === 'HEARTH_TOKEN' ? ' (unset it to use the data dir\'s config.json)' : '';
  return (
    `  the token came from ${from}${other}, for ${c.brokerUrl}\n` +
    `  a new one: ask whoever runs that broker, or with another token of yours that works: hearth token create;\n` +
    `  on a broker of your own, its admin token is in its data dir's admin-token (\`hearth up\` writes it into ${join(c.dataDir, 'config.json')})\n`
  );
}

// `hearth logs JOB | head` closes our stdout early; that is the reader's choice, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

void main(process.argv);
