// The spend controls' SQL on SQLite (tables of migration 6 in db.ts).
import { accountOf, limitsOf, type AccountLimit, type AccountRow, type LeaseLimits, type LimitRow, type SpendRepository, type WatchedLease } from '../spend-repository';
import type { Db } from './db';

export class SqliteSpend implements SpendRepository {
  constructor(private readonly db: Db) {}

  async setLeaseLimits(leaseId: string, maxCost: number | null, idleReleaseMs: number | null): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO lease_limits (lease_id, max_cost, idle_release_ms) VALUES (?, ?, ?)
         ON CONFLICT (lease_id) DO UPDATE SET max_cost = excluded.max_cost, idle_release_ms = excluded.idle_release_ms`,
      )
      .run(leaseId, maxCost, idleReleaseMs);
  }

  async leaseLimits(leaseIds: readonly string[]): Promise<Map<string, LeaseLimits>> {
    const out = new Map<string, LeaseLimits>();
    // json_each takes the whole list as one bound parameter, however many leases there are.
    const rows = this.db
      .prepare('SELECT l.* FROM lease_limits l JOIN json_each(?) j ON j.value = l.lease_id')
      .all(JSON.stringify(leaseIds)) as LimitRow[];
    for (const r of rows) out.set(r.lease_id, limitsOf(r));
    return out;
  }

  async watchedLeases(): Promise<WatchedLease[]> {
    const rows = this.db
      .prepare(
        `SELECT l.*, le.account_id, le.created_at,
           EXISTS (SELECT 1 FROM jobs j WHERE j.lease_id = l.lease_id AND j.status IN ('queued', 'running')) AS busy,
           (SELECT MAX(j.ended_at) FROM jobs j WHERE j.lease_id = l.lease_id) AS last_job_ended_at
         FROM leases le JOIN lease_limits l ON l.lease_id = le.id
         WHERE le.status = 'active' AND (l.max_cost IS NOT NULL OR l.idle_release_ms IS NOT NULL)`,
      )
      .all() as (LimitRow & { account_id: string; created_at: number; busy: number; last_job_ended_at: number | null })[];
    return rows.map((r) => ({ ...limitsOf(r), accountId: r.account_id, createdAt: r.created_at, busy: r.busy === 1, lastJobEndedAt: r.last_job_ended_at }));
  }

  async setLeaseWarning(leaseId: string, warning: string): Promise<void> {
    this.db
      .prepare('INSERT INTO lease_limits (lease_id, warning) VALUES (?, ?) ON CONFLICT (lease_id) DO UPDATE SET warning = excluded.warning')
      .run(leaseId, warning);
  }

  async setEndReason(leaseId: string, reason: string): Promise<void> {
    this.db
      .prepare(
        'INSERT INTO lease_limits (lease_id, end_reason) VALUES (?, ?) ON CONFLICT (lease_id) DO UPDATE SET end_reason = COALESCE(lease_limits.end_reason, excluded.end_reason)',
      )
      .run(leaseId, reason);
  }

  async accountLimit(accountId: string): Promise<AccountLimit | undefined> {
    const r = this.db.prepare('SELECT * FROM account_limits WHERE account_id = ?').get(accountId) as AccountRow | undefined;
    return r && accountOf(r);
  }

  async setAccountLimit(accountId: string, spendLimit: number | null): Promise<void> {
    // A new limit gets its own warning, even in a month that had one.
    this.db
      .prepare(
        `INSERT INTO account_limits (account_id, spend_limit) VALUES (?, ?)
         ON CONFLICT (account_id) DO UPDATE SET spend_limit = excluded.spend_limit, warned_period = NULL`,
      )
      .run(accountId, spendLimit);
  }

  async setAccountWarned(accountId: string, periodStart: number): Promise<void> {
    this.db.prepare('UPDATE account_limits SET warned_period = ? WHERE account_id = ?').run(periodStart, accountId);
  }

  async limitedAccountsWithActiveLeases(): Promise<AccountLimit[]> {
    const rows = this.db
      .prepare(
        `SELECT a.* FROM account_limits a WHERE a.spend_limit IS NOT NULL
           AND EXISTS (SELECT 1 FROM leases l WHERE l.account_id = a.account_id AND l.status = 'active')`,
      )
      .all() as AccountRow[];
    return rows.map(accountOf);
  }

  async leaseIdsSince(accountId: string, since: number): Promise<string[]> {
    const rows = this.db
      .prepare("SELECT id FROM leases WHERE account_id = ? AND (status = 'active' OR MIN(ended_at, expires_at) > ?)")
      .all(accountId, since) as { id: string }[];
    return rows.map((r) => r.id);
  }

  async activeLeaseIds(accountId: string): Promise<string[]> {
    const rows = this.db.prepare("SELECT id FROM leases WHERE account_id = ? AND status = 'active'").all(accountId) as { id: string }[];
    return rows.map((r) => r.id);
  }

  async openJobIds(leaseId: string): Promise<string[]> {
    const rows = this.db.prepare("SELECT id FROM jobs WHERE lease_id = ? AND status IN ('queued', 'running') ORDER BY rowid").all(leaseId) as { id: string }[];
    return rows.map((r) => r.id);
  }

  async cancelledSessionLeases(before: number): Promise<{ leaseId: string; cancelAt: number }[]> {
    return this.db
      .prepare(
        `SELECT j.lease_id AS leaseId, MIN(j.cancel_requested_at) AS cancelAt FROM jobs j
           JOIN leases l ON l.id = j.lease_id JOIN job_specs s ON s.job_id = j.id
         WHERE l.status = 'active' AND j.status IN ('queued', 'running') AND j.cancel_requested_at <= ?
           AND json_extract(s.spec, '$.releaseLease') = 1
         GROUP BY j.lease_id`,
      )
      .all(before) as { leaseId: string; cancelAt: number }[];
  }
}
