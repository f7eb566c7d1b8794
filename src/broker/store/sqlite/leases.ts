import type { LeasesRepo } from '../leases-repo';
import type { LeaseRow } from '../rows';
import type { Db } from './db';

export class SqliteLeases implements LeasesRepo {
  constructor(private readonly db: Db) {}

  async get(id: string): Promise<LeaseRow | undefined> {
    return this.db.prepare('SELECT * FROM leases WHERE id = ?').get(id) as LeaseRow | undefined;
  }

  async owned(id: string, accountId: string): Promise<LeaseRow | undefined> {
    return this.db.prepare('SELECT * FROM leases WHERE id = ? AND account_id = ?').get(id, accountId) as LeaseRow | undefined;
  }

  async ofAccount(accountId: string): Promise<LeaseRow[]> {
    return this.db.prepare('SELECT * FROM leases WHERE account_id = ? ORDER BY created_at DESC').all(accountId) as LeaseRow[];
  }

  async activeIndices(workerId: string): Promise<string[]> {
    return (this.db.prepare("SELECT gpu_indices FROM leases WHERE worker_id = ? AND status = 'active'").all(workerId) as { gpu_indices: string }[]).map((r) => r.gpu_indices);
  }

  async drainingIndices(workerId: string): Promise<string[]> {
    return (
      this.db
        .prepare(
          `SELECT DISTINCT l.gpu_indices FROM leases l JOIN jobs j ON j.lease_id = l.id
           WHERE l.worker_id = ? AND l.status <> 'active' AND j.dispatched_at IS NOT NULL AND j.status IN ('queued', 'running')`,
        )
        .all(workerId) as { gpu_indices: string }[]
    ).map((r) => r.gpu_indices);
  }

  async insert(r: Omit<LeaseRow, 'ended_at' | 'away_since' | 'away_ms' | 'status' | 'waiting_since'> & { waiting_since?: number | null }): Promise<void> {
    this.db
      .prepare(
        "INSERT INTO leases (id, account_id, worker_id, gpu_model, gpu_indices, count, price_per_hour, created_at, expires_at, status, waiting_since) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?)",
      )
      .run(r.id, r.account_id, r.worker_id, r.gpu_model, r.gpu_indices, r.count, r.price_per_hour, r.created_at, r.expires_at, r.waiting_since ?? null);
  }

  async waitingOf(workerId: string): Promise<LeaseRow[]> {
    return this.db.prepare("SELECT * FROM leases WHERE worker_id = ? AND status = 'active' AND waiting_since IS NOT NULL ORDER BY created_at").all(workerId) as LeaseRow[];
  }

  async start(id: string, now: number): Promise<boolean> {
    return (
      this.db
        .prepare("UPDATE leases SET created_at = ?, expires_at = expires_at + (? - waiting_since), waiting_since = NULL WHERE id = ? AND status = 'active' AND waiting_since IS NOT NULL")
        .run(now, now, id).changes > 0
    );
  }

  async setExpiry(id: string, expiresAt: number): Promise<void> {
    this.db.prepare('UPDATE leases SET expires_at = ? WHERE id = ?').run(expiresAt, id);
  }

  async due(now: number): Promise<LeaseRow[]> {
    return this.db.prepare("SELECT * FROM leases WHERE status = 'active' AND expires_at <= ?").all(now) as LeaseRow[];
  }

  async end(id: string, status: 'released' | 'expired', at: number): Promise<boolean> {
    return this.db.prepare("UPDATE leases SET status = ?, ended_at = ? WHERE id = ? AND status = 'active'").run(status, at, id).changes > 0;
  }

  async markAway(workerId: string, since: number): Promise<number> {
    return this.db.prepare("UPDATE leases SET away_since = MAX(created_at, ?) WHERE worker_id = ? AND status = 'active' AND away_since IS NULL").run(since, workerId).changes;
  }

  async awayOf(workerId: string): Promise<LeaseRow[]> {
    return this.db.prepare('SELECT * FROM leases WHERE worker_id = ? AND away_since IS NOT NULL').all(workerId) as LeaseRow[];
  }

  async clearAway(id: string, awayMs: number): Promise<void> {
    this.db.prepare('UPDATE leases SET away_ms = ?, away_since = NULL WHERE id = ?').run(awayMs, id);
  }

  async workerStack(leaseId: string, accountId: string): Promise<{ stack: string | null } | undefined> {
    return this.db.prepare('SELECT w.stack AS stack FROM leases l JOIN workers w ON w.id = l.worker_id WHERE l.id = ? AND l.account_id = ?').get(leaseId, accountId) as
      | { stack: string | null }
      | undefined;
  }

  async workerName(workerId: string): Promise<string | undefined> {
    return (this.db.prepare('SELECT name FROM workers WHERE id = ?').get(workerId) as { name: string } | undefined)?.name;
  }
}
