import type { WorkerRow } from '../rows';
import type { WorkerFields, WorkersRepo } from '../workers-repo';
import type { Db } from './db';

export class SqliteWorkers implements WorkersRepo {
  constructor(private readonly db: Db) {}

  async get(id: string): Promise<WorkerRow | undefined> {
    return this.db.prepare('SELECT * FROM workers WHERE id = ?').get(id) as WorkerRow | undefined;
  }

  async byNameAndHost(accountId: string, name: string, hostname: string): Promise<WorkerRow[]> {
    return this.db.prepare('SELECT * FROM workers WHERE account_id = ? AND name = ? AND hostname = ? ORDER BY last_seen DESC').all(accountId, name, hostname) as WorkerRow[];
  }

  async insert(r: WorkerRow & { created_at: number }): Promise<void> {
    this.db
      .prepare('INSERT INTO workers (id, account_id, name, hostname, version, gpus, price_per_hour, stack, last_seen, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(r.id, r.account_id, r.name, r.hostname, r.version, r.gpus, r.price_per_hour, r.stack, r.last_seen, r.created_at);
  }

  async update(id: string, f: WorkerFields): Promise<void> {
    this.db
      .prepare('UPDATE workers SET name = ?, hostname = ?, version = ?, gpus = ?, price_per_hour = ?, stack = ?, last_seen = ? WHERE id = ?')
      .run(f.name, f.hostname, f.version, f.gpus, f.price_per_hour, f.stack, f.last_seen, id);
  }

  async touch(id: string, at: number): Promise<void> {
    this.db.prepare('UPDATE workers SET last_seen = ? WHERE id = ?').run(at, id);
  }

  async seenSince(since: number): Promise<WorkerRow[]> {
    return this.db.prepare('SELECT * FROM workers WHERE last_seen > ? ORDER BY name').all(since) as WorkerRow[];
  }

  async outcomes(workerId: string): Promise<{ done: number; lost: number }> {
    const r = this.db
      .prepare(
        "SELECT SUM(CASE WHEN status IN ('succeeded','failed','cancelled','lost') THEN 1 ELSE 0 END) AS done, SUM(CASE WHEN status = 'lost' THEN 1 ELSE 0 END) AS lost FROM jobs WHERE worker_id = ?",
      )
      .get(workerId) as { done: number | null; lost: number | null };
    return { done: r.done ?? 0, lost: r.lost ?? 0 };
  }

  async silentWithActiveLeases(before: number): Promise<{ id: string; lastSeen: number }[]> {
    return this.db
      .prepare("SELECT DISTINCT w.id AS id, w.last_seen AS lastSeen FROM workers w JOIN leases l ON l.worker_id = w.id WHERE l.status = 'active' AND l.away_since IS NULL AND w.last_seen < ?")
      .all(before) as { id: string; lastSeen: number }[];
  }

  // One process holds every socket: there is no other replica to name.
  async setReplica(): Promise<void> {}

  async clearReplica(): Promise<void> {}

  async replicaOf(): Promise<string | undefined> {
    return undefined;
  }
}
