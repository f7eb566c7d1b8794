// The shared store: one PostgreSQL database for any number of broker replicas. Commits are fanned
// out to every replica with LISTEN/NOTIFY (hearth_events: job id and seq; followers read the rows
// themselves), requests for a worker's socket go to the replica holding it (hearth_commands), and
// periodic work takes an advisory lock and a row in `ticks` so it runs on one replica at a time.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { z } from 'zod';
import type { Store, WorkerCommand } from '../store';
import { PgAccounts } from './accounts';
import { PgBlobRefs } from './blob-refs';
import { EVENTS_CHANNEL, PgEvents } from './events';
import { PgJobs } from './jobs';
import { PgLeases } from './leases';
import { PgLedger } from './ledger';
import { PG_MIGRATIONS } from './migrations';
import { PgSecrets } from './secrets';
import { PgSpend } from './spend';
import { connect, disconnect, transaction, type Sql } from './sql';
import { PgWorkers } from './workers';

const COMMANDS_CHANNEL = 'hearth_commands';
/** The advisory lock key under which replicas migrate one at a time. */
const MIGRATE_LOCK = 0x4e415254;

/** A command as it travels between replicas: validated on arrival like any message from outside. */
const Command = z.object({
  to: z.string(),
  workerId: z.string(),
  kind: z.enum(['dispatch', 'cancel', 'request']),
  jobId: z.string(),
  data: z.string().optional(),
});

export async function migratePostgres(sql: Sql): Promise<void> {
  await transaction(sql, async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATE_LOCK})`;
    await tx`CREATE TABLE IF NOT EXISTS hearth_schema (version integer NOT NULL)`;
    const [row] = await tx<{ version: number }[]>`SELECT version FROM hearth_schema`;
    const current = row?.version ?? 0;
    if (!row) await tx`INSERT INTO hearth_schema (version) VALUES (0)`;
    if (current > PG_MIGRATIONS.length) {
      throw new Error(`database schema ${current} is newer than this broker understands (${PG_MIGRATIONS.length}); upgrade hearth`);
    }
    for (let v = current; v < PG_MIGRATIONS.length; v++) {
      await tx.unsafe(PG_MIGRATIONS[v]!);
      await tx`UPDATE hearth_schema SET version = ${v + 1}`;
    }
  });
}

export async function openPostgresStore(url: string): Promise<Store> {
  const sql = connect(url);
  try {
    await migratePostgres(sql);
  } catch (err) {
    await disconnect(sql);
    throw err;
  }
  const replicaId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const bus = new EventEmitter();
  bus.setMaxListeners(0);
  const events = await sql.listen(EVENTS_CHANNEL, (payload) => {
    const [jobId, seq] = payload.split(' ');
    if (jobId && seq) bus.emit('event', jobId, Number(seq));
  });
  const commands = await sql.listen(COMMANDS_CHANNEL, (payload) => {
    let parsed: z.SafeParseReturnType<unknown, z.infer<typeof Command>>;
    try {
      parsed = Command.safeParse(JSON.parse(payload));
    } catch {
      return;
    }
    if (parsed.success && parsed.data.to === replicaId) {
      const { to: _to, ...cmd } = parsed.data;
      bus.emit('command', cmd);
    }
  });
  return {
    kind: 'postgres',
    replicaId,
    accounts: new PgAccounts(sql),
    workers: new PgWorkers(sql),
    leases: new PgLeases(sql),
    jobs: new PgJobs(sql),
    events: new PgEvents(sql),
    blobRefs: new PgBlobRefs(sql),
    spend: new PgSpend(sql),
    secrets: new PgSecrets(sql),
    ledger: new PgLedger(sql),
    onEvent: (l) => void bus.on('event', l),
    async command(to: string, cmd: WorkerCommand) {
      // A NOTIFY payload holds under 8000 bytes; a kernel request larger than that is refused.
      const payload = JSON.stringify({ to, ...cmd });
      if (Buffer.byteLength(payload) > 7900) throw new Error('a kernel request this large cannot be relayed to the replica holding the worker (under 7 KB)');
      await sql.notify(COMMANDS_CHANNEL, payload);
    },
    onCommand: (l) => void bus.on('command', l),
    async runExclusive(name, everyMs, fn) {
      // The transaction holds the advisory lock while fn runs (on other connections of the pool);
      // the ticks row says when it last ran, so a replica that gets the lock right after another
      // released it does not run the same work again within everyMs.
      return transaction(sql, async (tx) => {
        const [lock] = await tx<{ ok: boolean }[]>`SELECT pg_try_advisory_xact_lock(hashtext(${'hearth:' + name})) AS ok`;
        if (!lock?.ok) return false;
        const now = Date.now();
        const due = await tx`
          INSERT INTO ticks (name, at, replica, runs) VALUES (${name}, ${now}, ${replicaId}, 1)
          ON CONFLICT (name) DO UPDATE SET at = EXCLUDED.at, replica = EXCLUDED.replica, runs = ticks.runs + 1
          WHERE ticks.at <= ${now - everyMs} RETURNING name`;
        if (due.length === 0) return false;
        await fn();
        return true;
      });
    },
    async close() {
      await events.unlisten().catch(() => {});
      await commands.unlisten().catch(() => {});
      await disconnect(sql);
    },
  };
}
