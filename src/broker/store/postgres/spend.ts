// The spend controls' SQL on PostgreSQL (tables of migration 2 in migrations.ts).
import { accountOf, limitsOf, type AccountLimit, type AccountRow, type LeaseLimits, type LimitRow, type SpendRepository, type WatchedLease } from '../spend-repository';
import type { Sql } from './sql';

export class PgSpend implements SpendRepository {
  constructor(private readonly sql: Sql) {}

  async setLeaseLimits(leaseId: string, maxCost: number | null, idleReleaseMs: number | null): Promise<void> {
    await this.sql`INSERT INTO lease_limits (lease_id, max_cost, idle_release_ms) VALUES (${leaseId}, ${maxCost}, ${idleReleaseMs})
      ON CONFLICT (lease_id) DO UPDATE SET max_cost = EXCLUDED.max_cost, idle_release_ms = EXCLUDED.idle_release_ms`;
  }

  async leaseLimits(leaseIds: readonly string[]): Promise<Map<string, LeaseLimits>> {
    const out = new Map<string, LeaseLimits>();
    if (leaseIds.length === 0) return out;
    const rows = await this.sql<LimitRow[]>`SELECT * FROM lease_limits WHERE lease_id = ANY(${[...leaseIds]}::text[])`;
    for (const r of rows) out.set(r.lease_id, limitsOf(r));
    return out;
  }

  async watchedLeases(): Promise<WatchedLease[]> {
    const rows = await this.sql<(LimitRow & { account_id: string; created_at: number; busy: boolean; last_job_ended_at: number | null })[]>`
      SELECT l.*, le.account_id, le.created_at,
        EXISTS (SELECT 1 FROM jobs j WHERE j.lease_id = l.lease_id AND j.status IN ('queued', 'running')) AS busy,
        (SELECT MAX(j.ended_at) FROM jobs j WHERE j.lease_id = l.lease_id) AS last_job_ended_at
      FROM leases le JOIN lease_limits l ON l.lease_id = le.id
      WHERE le.status = 'active' AND (l.max_cost IS NOT NULL OR l.idle_release_ms IS NOT NULL)`;
    return rows.map((r) => ({ ...limitsOf(r), accountId: r.account_id, createdAt: r.created_at, busy: r.busy, lastJobEndedAt: r.last_job_ended_at }));
  }

  async setLeaseWarning(leaseId: string, warning: string): Promise<void> {
    await this.sql`INSERT INTO lease_limits (lease_id, warning) VALUES (${leaseId}, ${warning}) ON CONFLICT (lease_id) DO UPDATE SET warning = EXCLUDED.warning`;
  }

  async setEndReason(leaseId: string, reason: string): Promise<void> {
    await this.sql`INSERT INTO lease_limits (lease_id, end_reason) VALUES (${leaseId}, ${reason})
      ON CONFLICT (lease_id) DO UPDATE SET end_reason = COALESCE(lease_limits.end_reason, EXCLUDED.end_reason)`;
  }

  async accountLimit(accountId: string): Promise<AccountLimit | undefined> {
    const [r] = await this.sql<AccountRow[]>`SELECT * FROM account_limits WHERE account_id = ${accountId}`;
    return r && accountOf(r);
  }

  async setAccountLimit(accountId: string, spendLimit: number | null): Promise<void> {
    // A new limit gets its own warning, even in a month that had one.
    await this.sql`INSERT INTO account_limits (account_id, spend_limit) VALUES (${accountId}, ${spendLimit})
      ON CONFLICT (account_id) DO UPDATE SET spend_limit = EXCLUDED.spend_limit, warned_period = NULL`;
  }

  async setAccountWarned(accountId: string, periodStart: number): Promise<void> {
    await this.sql`UPDATE account_limits SET warned_period = ${periodStart} WHERE account_id = ${accountId}`;
  }

  async limitedAccountsWithActiveLeases(): Promise<AccountLimit[]> {
    const rows = await this.sql<AccountRow[]>`SELECT a.* FROM account_limits a WHERE a.spend_limit IS NOT NULL
      AND EXISTS (SELECT 1 FROM leases l WHERE l.account_id = a.account_id AND l.status = 'active')`;
    return rows.map(accountOf);
  }

  async leaseIdsSince(accountId: string, since: number): Promise<string[]> {
    // LEAST skips nulls where SQLite's MIN(a, b) is null: an ended lease always has ended_at.
    const rows = await this.sql<{ id: string }[]>`SELECT id FROM leases WHERE account_id = ${accountId}
      AND (status = 'active' OR (ended_at IS NOT NULL AND LEAST(ended_at, expires_at) > ${since}))`;
    return rows.map((r) => r.id);
  }

  async activeLeaseIds(accountId: string): Promise<string[]> {
    const rows = await this.sql<{ id: string }[]>`SELECT id FROM leases WHERE account_id = ${accountId} AND status = 'active'`;
    return rows.map((r) => r.id);
  }

  async openJobIds(leaseId: string): Promise<string[]> {
    const rows = await this.sql<{ id: string }[]>`SELECT id FROM jobs WHERE lease_id = ${leaseId} AND status IN ('queued', 'running') ORDER BY ord`;
    return rows.map((r) => r.id);
  }

  async cancelledSessionLeases(before: number): Promise<{ leaseId: string; cancelAt: number }[]> {
    const rows = await this.sql<{ lease_id: string; cancel_at: number }[]>`
      SELECT j.lease_id, MIN(j.cancel_requested_at) AS cancel_at FROM jobs j
        JOIN leases l ON l.id = j.lease_id JOIN job_specs s ON s.job_id = j.id
      WHERE l.status = 'active' AND j.status IN ('queued', 'running') AND j.cancel_requested_at <= ${before}
        AND (s.spec::jsonb ->> 'releaseLease') = 'true'
      GROUP BY j.lease_id`;
    return rows.map((r) => ({ leaseId: r.lease_id, cancelAt: Number(r.cancel_at) }));
  }
}
