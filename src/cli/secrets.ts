// `hearth secret set|list|rm`: the renter's secrets, which the broker keeps sealed and hands to
// their own jobs and kernels as environment variables. A value is never an argument.
import type { Command } from 'commander';
import { SECRET_MIN_MASKED, SecretName } from '../shared/protocol';
import { resolveDataDir } from '../client/config';
import { clientFor, flag, globals, UsageError } from './context';
import { rememberSecret } from './secret-files';
import { printJson, table } from './output';
import { readSecret } from './prompt';

export function registerSecretCommands(program: Command): void {
  const secret = program.command('secret').description('secrets your jobs and kernels get as environment variables (values never shown)');

  secret
    .command('set')
    .description('set a secret: the value from a hidden prompt, or from stdin (`hearth secret set HF_TOKEN < file`)')
    .argument('<name>', 'its environment variable name, e.g. HF_TOKEN')
    .allowExcessArguments(true)
    .action(async (name: string, _o: unknown, cmd: Command) => {
      if (cmd.args.length > 1) {
        throw new UsageError('a secret\'s value is never an argument (it would stay in your shell history and show in ps): type it at the prompt or pipe it on stdin');
      }
      const n = flag('name', SecretName, name);
      const client = clientFor(cmd);
      const value = await readSecret(`value of ${n} (not shown): `);
      const info = await client.setSecret(n, value);
      rememberSecret(resolveDataDir(globals(cmd).dataDir), n, value);
      if (globals(cmd).json) return printJson(info);
      if (value.length < SECRET_MIN_MASKED) {
        process.stderr.write(`hearth: warning: values shorter than ${SECRET_MIN_MASKED} characters are not masked in job logs\n`);
      }
      process.stderr.write(`hearth: secret ${n} set; your jobs and kernels get it as $${n}\n`);
    });

  secret
    .command('list')
    .description('your secrets: names and when each was set, never the values')
    .action(async (_o: unknown, cmd: Command) => {
      const list = await clientFor(cmd).secrets();
      if (globals(cmd).json) return printJson(list);
      if (!list.length) return void process.stderr.write('hearth: no secrets; set one with `hearth secret set NAME`\n');
      process.stdout.write(table(list.map((s) => [s.name, new Date(s.updatedAt).toISOString().slice(0, 16).replace('T', ' ')]), ['NAME', 'UPDATED (UTC)']));
    });

  secret
    .command('rm')
    .description('remove a secret (jobs started from now on no longer get it)')
    .argument('<name>')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const n = flag('name', SecretName, name);
      await clientFor(cmd).removeSecret(n);
      rememberSecret(resolveDataDir(globals(cmd).dataDir), n, undefined);
      if (!globals(cmd).json) process.stderr.write(`hearth: secret ${n} removed\n`);
    });
}
