import type { LeasesRepo } from '../leases-repo';
import type { LeaseRow } from '../rows';
import type { Sql } from './sql';

export class PgLeases implements LeasesRepo {
  constructor(private readonly sql: Sql) {}

  async get(id: string): Promise<LeaseRow | undefined> {
    const [r] = await this.sql<LeaseRow[]>`SELECT * FROM leases WHERE id = ${id}`;
    return r;
  }

  async owned(id: string, accountId: string): Promise<LeaseRow | undefined> {
    const [r] = await this.sql<LeaseRow[]>`SELECT * FROM leases WHERE id = ${id} AND account_id = ${accountId}`;
    return r;
  }

  async ofAccount(accountId: string): Promise<LeaseRow[]> {
    return [...(await this.sql<LeaseRow[]>`SELECT * FROM leases WHERE account_id = ${accountId} ORDER BY created_at DESC`)];
  }

  async activeIndices(workerId: string): Promise<string[]> {
    return (await this.sql<{ gpu_indices: string }[]>`SELECT gpu_indices FROM leases WHERE worker_id = ${workerId} AND status = 'active'`).map((r) => r.gpu_indices);
  }

  async drainingIndices(workerId: string): Promise<string[]> {
    return (
      await this.sql<{ gpu_indices: string }[]>`SELECT DISTINCT l.gpu_indices FROM leases l JOIN jobs j ON j.lease_id = l.id
        WHERE l.worker_id = ${workerId} AND l.status <> 'active' AND j.dispatched_at IS NOT NULL AND j.status IN ('queued', 'running')`
    ).map((r) => r.gpu_indices);
  }

  async insert(r: Omit<LeaseRow, 'ended_at' | 'away_since' | 'away_ms' | 'status' | 'waiting_since'> & { waiting_since?: number | null }): Promise<void> {
    await this.sql`INSERT INTO leases (id, account_id, worker_id, gpu_model, gpu_indices, count, price_per_hour, created_at, expires_at, status, waiting_since)
      VALUES (${r.id}, ${r.account_id}, ${r.worker_id}, ${r.gpu_model}, ${r.gpu_indices}, ${r.count}, ${r.price_per_hour}, ${r.created_at}, ${r.expires_at}, 'active', ${r.waiting_since ?? null})`;
  }

  async waitingOf(workerId: string): Promise<LeaseRow[]> {
    return [...(await this.sql<LeaseRow[]>`SELECT * FROM leases WHERE worker_id = ${workerId} AND status = 'active' AND waiting_since IS NOT NULL ORDER BY created_at`)];
  }

  async start(id: string, now: number): Promise<boolean> {
    const r = await this.sql`UPDATE leases SET created_at = ${now}, expires_at = expires_at + (${now} - waiting_since), waiting_since = NULL
      WHERE id = ${id} AND status = 'active' AND waiting_since IS NOT NULL`;
    return r.count > 0;
  }

  async setExpiry(id: string, expiresAt: number): Promise<void> {
    await this.sql`UPDATE leases SET expires_at = ${expiresAt} WHERE id = ${id}`;
  }

  async due(now: number): Promise<LeaseRow[]> {
    return [...(await this.sql<LeaseRow[]>`SELECT * FROM leases WHERE status = 'active' AND expires_at <= ${now}`)];
  }

  async end(id: string, status: 'released' | 'expired', at: number): Promise<boolean> {
    const r = await this.sql`UPDATE leases SET status = ${status}, ended_at = ${at} WHERE id = ${id} AND status = 'active'`;
    return r.count > 0;
  }

  async markAway(workerId: string, since: number): Promise<number> {
    const r = await this.sql`UPDATE leases SET away_since = GREATEST(created_at, ${since}) WHERE worker_id = ${workerId} AND status = 'active' AND away_since IS NULL`;
    return r.count;
  }

  async awayOf(workerId: string): Promise<LeaseRow[]> {
    return [...(await this.sql<LeaseRow[]>`SELECT * FROM leases WHERE worker_id = ${workerId} AND away_since IS NOT NULL`)];
  }

  async clearAway(id: string, awayMs: number): Promise<void> {
    await this.sql`UPDATE leases SET away_ms = ${awayMs}, away_since = NULL WHERE id = ${id}`;
  }

  async workerStack(leaseId: string, accountId: string): Promise<{ stack: string | null } | undefined> {
    const [r] = await this.sql<{ stack: string | null }[]>`SELECT w.stack AS stack FROM leases l JOIN workers w ON w.id = l.worker_id WHERE l.id = ${leaseId} AND l.account_id = ${accountId}`;
    return r;
  }

  async workerName(workerId: string): Promise<string | undefined> {
    const [r] = await this.sql<{ name: string }[]>`SELECT name FROM workers WHERE id = ${workerId}`;
    return r?.name;
  }
}
