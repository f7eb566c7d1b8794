// `hearth gpus`, `lease`, `leases`, `renew`, `release`, and account/token administration.
import type { Command } from 'commander';
import { z } from 'zod';
import { accountSpendText, leaseLimitsText, leasePriceText } from '../shared/money';
import { networkShort } from '../shared/network-text';
import { Credits, type Lease } from '../shared/protocol';
import { leaseAtQuote } from '../client/lease-quote';
import { visibleText } from '../shared/terminal-text';
import { clientFor, DurationFlag, flag, globals, idArg, PositiveInt, PositiveNumber } from './context';
import { formatBytes, formatDuration, printJson, table } from './output';

function leaseRows(leases: Lease[]): string {
  const now = Date.now();
  return table(
    leases.map((l) => [
      l.id,
      l.status === 'active' && l.waitingFor ? 'waiting' : l.status === 'active' || !l.endReason || l.endReason === l.status ? l.status : `${l.status} (${l.endReason})`,
      `${l.count}× ${l.gpuModel}`,
      l.workerName,
      l.status === 'active' ? formatDuration(l.expiresAt - now) : '',
      l.cost.toFixed(4),
      `${leaseLimitsText(l)}${l.spendWarning && l.status === 'active' ? ' ⚠' : ''}`,
    ]),
    ['LEASE', 'STATUS', 'DEVICES', 'WORKER', 'TIME LEFT', 'COST', 'LIMITS'],
  ) +
    leases.filter((l) => l.status === 'active' && l.waitingFor).map((l) => `waiting: ${l.id}: for ${l.waitingFor}\n`).join('') +
    leases.filter((l) => l.status === 'active' && l.spendWarning).map((l) => `warning: ${l.id}: ${l.spendWarning}\n`).join('');
}

/** `--max-cost` and `--idle-release` of `hearth lease` and `hearth run`, for the lease request. */
export function leaseLimitFlags(o: { maxCost?: string; idleRelease?: string }): { maxCost?: number; idleReleaseMinutes?: number } {
  return {
    ...(o.maxCost === undefined ? {} : { maxCost: flag('max-cost', z.coerce.number().pipe(Credits), o.maxCost) }),
    ...(o.idleRelease === undefined ? {} : { idleReleaseMinutes: flag('idle-release', PositiveNumber, o.idleRelease) }),
  };
}

export function registerLeaseCommands(program: Command): void {
  program
    .command('gpus')
    .description('list the GPUs on offer')
    .action(async (_o: unknown, cmd: Command) => {
      const offers = await clientFor(cmd).offers();
      if (globals(cmd).json) return printJson(offers);
      if (!offers.length) {
        process.stderr.write('hearth: no worker is connected to this broker\n');
        return;
      }
      process.stdout.write(
        table(
          offers.map((o) => [
            o.gpuModel,
            o.isGpu ? `${(o.vramMiB / 1024).toFixed(0)} GiB` : '-',
            `${o.free}/${o.total}`,
            o.pricePerHour.toFixed(2),
            `${Math.round(o.reliability * 100)}%`,
            o.stack ? `${o.stack.python}${o.stack.torch ? ` torch ${o.stack.torch}` : ''}${o.stack.cuda ? ` cuda ${o.stack.cuda}` : ''}` : '?',
            o.stack ? (o.stack.kernels ? 'yes' : 'no') : '?',
            o.stack?.driver ?? '-',
            o.stack?.diskFreeBytes !== undefined ? formatBytes(o.stack.diskFreeBytes) : '?',
            networkShort(o.stack),
            o.workerName,
            o.workerId,
          ]),
          ['MODEL', 'VRAM', 'FREE', 'PRICE/H', 'RELIABILITY', 'PYTHON', 'NOTEBOOKS', 'DRIVER', 'DISK FREE', 'NETWORK', 'WORKER', 'WORKER ID'],
        ),
      );
    });

  program
    .command('lease')
    .description('lease GPUs of one worker for a time')
    .option('--gpu <model>', 'GPU model (substring, case-insensitive), e.g. H100')
    .option('--worker <id>', 'a particular worker')
    .option('--count <n>', 'how many devices', '1')
    .option('--hours <h>', 'how long', '1')
    .option('--max-cost <credits>', 'end the lease (stopping its jobs) when its cost reaches this; a warning comes at 80%')
    .option('--idle-release <minutes>', 'release the lease after this many minutes with nothing queued or running on it')
    .action(async (o: { gpu?: string; worker?: string; count: string; hours: string; maxCost?: string; idleRelease?: string }, cmd: Command) => {
      const hours = flag('hours', PositiveNumber, o.hours);
      const body = { gpuModel: o.gpu, workerId: o.worker === undefined ? undefined : idArg('wrk', o.worker), count: flag('count', PositiveInt, o.count), hours, ...leaseLimitFlags(o) };
      const lease = await leaseAtQuote(clientFor(cmd), body);
      if (globals(cmd).json) return printJson(lease);
      process.stdout.write(`${lease.id}\n`);
      const limits = leaseLimitsText(lease);
      process.stderr.write(
        `leased ${lease.count}× ${visibleText(lease.gpuModel)} on ${visibleText(lease.workerName)} until ${new Date(lease.expiresAt).toLocaleString()} (${leasePriceText(lease, hours)}${limits ? `; ${limits}` : ''})\n`,
      );
      if (lease.waitingFor) process.stderr.write(`waiting for ${lease.waitingFor}\n`);
    });

  program
    .command('leases')
    .description('list your leases')
    .option('--all', 'include ended leases')
    .action(async (o: { all?: boolean }, cmd: Command) => {
      const leases = (await clientFor(cmd).leases()).filter((l) => o.all || l.status === 'active');
      if (globals(cmd).json) return printJson(leases);
      process.stdout.write(leaseRows(leases));
    });

  program
    .command('renew')
    .description('extend a lease')
    .argument('<lease>')
    .option('--hours <h>', 'how much longer', '1')
    .action(async (id: string, o: { hours: string }, cmd: Command) => {
      const hours = flag('hours', PositiveNumber, o.hours);
      const lease = await clientFor(cmd).renewLease(idArg('lease', id), hours);
      if (globals(cmd).json) return printJson(lease);
      process.stdout.write(leaseRows([lease]));
    });

  program
    .command('release')
    .description('end a lease now (its running jobs are stopped; their outputs are kept)')
    .argument('<lease>')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const lease = await clientFor(cmd).releaseLease(idArg('lease', id));
      if (globals(cmd).json) return printJson(lease);
      process.stdout.write(leaseRows([lease]));
    });

  const account = program.command('account').description('accounts: create (admin), whoami, spend limit');
  account
    .command('create')
    .argument('<name>')
    .description('create an account and print its first token')
    .option('--spend-limit <credits>', 'the account\'s monthly spend limit (its owner may change it)')
    .action(async (name: string, o: { spendLimit?: string }, cmd: Command) => {
      const limit = o.spendLimit === undefined ? undefined : flag('spend-limit', z.coerce.number().pipe(Credits), o.spendLimit);
      const r = await clientFor(cmd).createAccount(flag('name', z.string().min(1), name), limit);
      if (globals(cmd).json) return printJson(r);
      process.stdout.write(`${r.token}\n`);
      process.stderr.write(`created account ${r.name} (${r.accountId}); the token above is shown once\n`);
    });
  account
    .command('whoami')
    .description('the account of the token in use')
    .action(async (_o: unknown, cmd: Command) => {
      const me = await clientFor(cmd).me();
      if (globals(cmd).json) return printJson(me);
      process.stdout.write(`${me.name} (${me.accountId})${me.isAdmin ? ' admin' : ''}\n`);
    });

  account
    .command('limit')
    .description('show what your account spent this month (UTC) against its limit; --spend sets the limit, --spend none removes it')
    .option('--spend <credits|none>', 'monthly spend limit: at 80% running jobs get a warning, at 100% every lease of the account ends')
    .action(async (o: { spend?: string }, cmd: Command) => {
      const client = clientFor(cmd);
      const s =
        o.spend === undefined
          ? await client.accountSpend()
          : await client.setSpendLimit(o.spend === 'none' ? null : flag('spend', z.coerce.number().pipe(Credits), o.spend));
      if (globals(cmd).json) return printJson(s);
      process.stdout.write(`${accountSpendText(s)}\n`);
      if (s.spendLimit !== null && s.spent >= s.spendLimit) process.stderr.write(`hearth: the limit is reached: new leases are refused until ${new Date(s.periodEnd).toISOString().slice(0, 10)} or a higher limit\n`);
    });

  const token = program.command('token').description('tokens of your account: create, list, revoke');
  token
    .command('create')
    .description('create a token for your account (--worker for a GPU host\'s worker agent); it is printed once')
    .option('--worker', 'a worker token')
    .option('--label <text>', 'what it is for', '')
    .option('--expires <duration>', 'stop working after this long, e.g. 30d, 12h, 90m (default: until revoked)')
    .action(async (o: { worker?: boolean; label: string; expires?: string }, cmd: Command) => {
      const seconds = o.expires === undefined ? undefined : flag('expires', DurationFlag, o.expires);
      const r = await clientFor(cmd).createToken(o.worker ? 'worker' : 'user', o.label, seconds);
      if (globals(cmd).json) return printJson(r);
      process.stdout.write(`${r.token}\n`);
      const until = r.expiresAt ? `, expires ${new Date(r.expiresAt).toISOString()}` : '';
      process.stderr.write(`created ${r.kind} token ${r.id ?? ''}${until}; the token above is shown once\n`);
    });
  token
    .command('list')
    .description('your account\'s tokens: id, kind, label, created, last used, expiry (never the secret)')
    .action(async (_o: unknown, cmd: Command) => {
      const tokens = await clientFor(cmd).tokens();
      if (globals(cmd).json) return printJson(tokens);
      const when = (t: number | null) => (t === null ? '-' : new Date(t).toISOString().slice(0, 16).replace('T', ' '));
      const now = Date.now();
      process.stdout.write(
        table(
          tokens.map((t) => [
            t.id,
            `${t.prefix}…`,
            t.kind,
            t.revokedAt !== null ? 'revoked' : t.expiresAt !== null && t.expiresAt <= now ? 'expired' : 'active',
            when(t.createdAt),
            when(t.lastUsedAt),
            when(t.expiresAt),
            t.label,
          ]),
          ['ID', 'STARTS', 'KIND', 'STATE', 'CREATED', 'LAST USED', 'EXPIRES', 'LABEL'],
        ),
      );
    });
  token
    .command('revoke')
    .argument('<id>', 'a token id from `hearth token list` (tok_…)')
    .description('revoke a token of your account: refused at once, and a worker connected with it is disconnected')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const t = await clientFor(cmd).revokeToken(idArg('tok', id));
      if (globals(cmd).json) return printJson(t);
      process.stderr.write(`revoked ${t.kind} token ${t.id} (${t.prefix}…)\n`);
    });
}
