import type { WorkerRow } from '../rows';
import type { WorkerFields, WorkersRepo } from '../workers-repo';
import type { Sql } from './sql';

const COLS = 'id, account_id, name, hostname, version, gpus, price_per_hour, last_seen, stack';

export class PgWorkers implements WorkersRepo {
  constructor(private readonly sql: Sql) {}

  async get(id: string): Promise<WorkerRow | undefined> {
    const [r] = await this.sql<WorkerRow[]>`SELECT ${this.sql.unsafe(COLS)} FROM workers WHERE id = ${id}`;
    return r;
  }

  async byNameAndHost(accountId: string, name: string, hostname: string): Promise<WorkerRow[]> {
    return [
      ...(await this.sql<WorkerRow[]>`SELECT ${this.sql.unsafe(COLS)} FROM workers WHERE account_id = ${accountId} AND name = ${name} AND hostname = ${hostname} ORDER BY last_seen DESC`),
    ];
  }

  async insert(r: WorkerRow & { created_at: number }): Promise<void> {
    await this.sql`INSERT INTO workers (id, account_id, name, hostname, version, gpus, price_per_hour, stack, last_seen, created_at)
      VALUES (${r.id}, ${r.account_id}, ${r.name}, ${r.hostname}, ${r.version}, ${r.gpus}, ${r.price_per_hour}, ${r.stack}, ${r.last_seen}, ${r.created_at})`;
  }

  async update(id: string, f: WorkerFields): Promise<void> {
    await this.sql`UPDATE workers SET name = ${f.name}, hostname = ${f.hostname}, version = ${f.version}, gpus = ${f.gpus},
      price_per_hour = ${f.price_per_hour}, stack = ${f.stack}, last_seen = ${f.last_seen} WHERE id = ${id}`;
  }

  async touch(id: string, at: number): Promise<void> {
    await this.sql`UPDATE workers SET last_seen = ${at} WHERE id = ${id}`;
  }

  async seenSince(since: number): Promise<WorkerRow[]> {
    return [...(await this.sql<WorkerRow[]>`SELECT ${this.sql.unsafe(COLS)} FROM workers WHERE last_seen > ${since} ORDER BY name`)];
  }

  async outcomes(workerId: string): Promise<{ done: number; lost: number }> {
    const [r] = await this.sql<{ done: number; lost: number }[]>`
      SELECT COUNT(*) FILTER (WHERE status IN ('succeeded','failed','cancelled','lost'))::int AS done,
             COUNT(*) FILTER (WHERE status = 'lost')::int AS lost FROM jobs WHERE worker_id = ${workerId}`;
    return r!;
  }

  async silentWithActiveLeases(before: number): Promise<{ id: string; lastSeen: number }[]> {
    return [
      ...(await this.sql<{ id: string; lastSeen: number }[]>`
        SELECT DISTINCT w.id AS id, w.last_seen AS "lastSeen" FROM workers w JOIN leases l ON l.worker_id = w.id
        WHERE l.status = 'active' AND l.away_since IS NULL AND w.last_seen < ${before}`),
    ];
  }

  async setReplica(id: string, replica: string): Promise<void> {
    await this.sql`UPDATE workers SET replica = ${replica} WHERE id = ${id}`;
  }

  async clearReplica(id: string, replica: string): Promise<void> {
    await this.sql`UPDATE workers SET replica = NULL WHERE id = ${id} AND replica = ${replica}`;
  }

  async replicaOf(id: string, since: number): Promise<string | undefined> {
    const [r] = await this.sql<{ replica: string }[]>`SELECT replica FROM workers WHERE id = ${id} AND replica IS NOT NULL AND last_seen > ${since}`;
    return r?.replica;
  }
}
