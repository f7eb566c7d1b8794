// `hearth balance`, `earnings`, `ledger` and the admin's `admin grant | overdraft | fee`.
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { z } from 'zod';
import { credits } from '../shared/money';
import { Credits, type LedgerPosting } from '../shared/protocol';
import { clientFor, DurationFlag, flag, globals, UsageError } from './context';
import { printJson, table } from './output';

/** `--since`: a date or time (2026-12-01, ISO 8601) or how long ago (30d, 12h). */
export function sinceFlag(v: string | undefined, now = Date.now()): number | undefined {
  if (v === undefined) return undefined;
  if (/^\d+(\.\d+)?[smhdw]?$/.test(v)) return now - flag('since', DurationFlag, v) * 1000;
  const t = Date.parse(v);
  if (!Number.isFinite(t)) throw new UsageError(`--since: expected a date (2026-12-01), a time (ISO 8601) or a duration (30d), not ${JSON.stringify(v)}`);
  return t;
}

const csvCell = (v: string | number | null) => {
  const s = v === null ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** RFC 4180 CSV with a header line. */
export function csv(header: string[], rows: (string | number | null)[][]): string {
  return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

const postingCells = (p: LedgerPosting) => [p.id, new Date(p.at).toISOString(), p.kind, p.from, p.to, p.credits, p.leaseId, p.workerId, p.key, p.memo];

export function registerLedgerCommands(program: Command): void {
  program
    .command('balance')
    .description('your prepaid balance, what your leases hold in escrow, and what your workers earned')
    .action(async (_o: unknown, cmd: Command) => {
      const b = await clientFor(cmd).balance();
      if (globals(cmd).json) return printJson(b);
      const od = b.overdraft === null ? ' (open credit: the broker does not refuse leases for want of credits)' : b.overdraft > 0 ? ` (overdraft ${credits(b.overdraft)})` : '';
      process.stdout.write(`balance ${credits(b.balance)}${od}\nheld by leases ${credits(b.held)}\nearnings ${credits(b.earnings)}\n`);
    });

  program
    .command('earnings')
    .description("what your account's workers earned, per worker and UTC day, net of the broker's fee")
    .option('--since <when>', 'from this date or time (2026-12-01) or this long ago (30d)')
    .option('--csv', 'CSV, for payouts')
    .action(async (o: { since?: string; csv?: boolean }, cmd: Command) => {
      const rows = await clientFor(cmd).earnings(sinceFlag(o.since));
      if (globals(cmd).json) return printJson(rows);
      if (o.csv) return void process.stdout.write(csv(['day', 'worker_id', 'worker', 'credits'], rows.map((r) => [r.day, r.workerId, r.workerName, r.credits])));
      process.stdout.write(table(rows.map((r) => [r.day, r.workerName, r.workerId, r.credits.toFixed(6)]), ['DAY', 'WORKER', 'WORKER ID', 'CREDITS']));
    });

  program
    .command('ledger')
    .description("the ledger's postings that touch your account: grants, escrow holds and returns, metering, fees, refunds")
    .option('--since <when>', 'from this date or time (2026-12-01) or this long ago (30d)')
    .option('--csv', 'CSV, for payouts and bookkeeping')
    .action(async (o: { since?: string; csv?: boolean }, cmd: Command) => {
      const rows = await clientFor(cmd).ledger(sinceFlag(o.since));
      if (globals(cmd).json) return printJson(rows);
      const header = ['id', 'at', 'kind', 'from', 'to', 'credits', 'lease', 'worker', 'key', 'memo'];
      if (o.csv) return void process.stdout.write(csv(header, rows.map(postingCells)));
      process.stdout.write(table(rows.map((p) => [String(p.id), new Date(p.at).toISOString(), p.kind, p.from, p.to, p.credits.toFixed(6), p.leaseId ?? '']), ['ID', 'AT', 'KIND', 'FROM', 'TO', 'CREDITS', 'LEASE']));
    });

  const admin = program.command('admin').description("the broker admin's ledger: grants, overdrafts, the broker's fee");
  admin
    .command('grant')
    .description('give an account credits (prepaid balance); --key makes a retry grant once')
    .argument('<account>', 'account name or id')
    .argument('<credits>')
    .option('--key <key>', 'idempotency key (default: a new one)')
    .action(async (account: string, amount: string, o: { key?: string }, cmd: Command) => {
      const r = await clientFor(cmd).grant(account, flag('credits', z.coerce.number().pipe(Credits), amount), o.key ?? randomUUID());
      if (globals(cmd).json) return printJson(r);
      process.stdout.write(`${r.applied ? 'granted' : 'already granted (same key)'}; ${account} (${r.accountId}) has ${credits(r.balance)}\n`);
    });
  admin
    .command('overdraft')
    .description("let an account's balance go this far below zero")
    .argument('<account>', 'account name or id')
    .argument('<credits>')
    .action(async (account: string, amount: string, _o: unknown, cmd: Command) => {
      const b = await clientFor(cmd).setOverdraft(account, flag('credits', z.coerce.number().min(0).max(1e9), amount));
      if (globals(cmd).json) return printJson(b);
      process.stdout.write(`${account}: balance ${credits(b.balance)}, overdraft ${credits(b.overdraft ?? 0)}\n`);
    });
  admin
    .command('fee')
    .description("the broker's share of every metered credit, in percent")
    .argument('<percent>')
    .action(async (pct: string, _o: unknown, cmd: Command) => {
      const r = await clientFor(cmd).setFee(flag('percent', z.coerce.number().min(0).max(100), pct) / 100);
      if (globals(cmd).json) return printJson(r);
      process.stdout.write(`broker fee ${Number((r.share * 100).toFixed(2))}%\n`);
    });
}
