// The spend controls' storage: a lease's cost cap and idle release, an account's monthly spend
// limit, the warnings already given and why a lease ended. One interface of async methods,
// implemented in sqlite/spend.ts (migration 6) and postgres/spend.ts (migration 2).

export interface LeaseLimits {
  leaseId: string;
  /** credits; null: no cap */
  maxCost: number | null;
  /** null: never released for idleness */
  idleReleaseMs: number | null;
  /** the warning given (near the cap or the account's limit), null until one is */
  warning: string | null;
  /** why the lease ended when the spend controls or a person ended it */
  endReason: string | null;
}

/** An active lease the spend controls watch (it has a cap or an idle release). */
export interface WatchedLease extends LeaseLimits {
  accountId: string;
  createdAt: number;
  /** whether a job or kernel is queued or running on it */
  busy: boolean;
  /** when its last job ended (null: none has) */
  lastJobEndedAt: number | null;
}

export interface AccountLimit {
  accountId: string;
  /** credits a calendar month; null: none */
  spendLimit: number | null;
  /** start of the month whose warning was given, null until one is */
  warnedPeriod: number | null;
}

export interface SpendRepository {
  setLeaseLimits(leaseId: string, maxCost: number | null, idleReleaseMs: number | null): Promise<void>;
  leaseLimits(leaseIds: readonly string[]): Promise<Map<string, LeaseLimits>>;
  /** active leases with a cap or an idle release */
  watchedLeases(): Promise<WatchedLease[]>;
  setLeaseWarning(leaseId: string, warning: string): Promise<void>;
  /** records why a lease ended, unless a reason is recorded already */
  setEndReason(leaseId: string, reason: string): Promise<void>;
  accountLimit(accountId: string): Promise<AccountLimit | undefined>;
  setAccountLimit(accountId: string, spendLimit: number | null): Promise<void>;
  setAccountWarned(accountId: string, periodStart: number): Promise<void>;
  /** accounts with a limit that hold an active lease */
  limitedAccountsWithActiveLeases(): Promise<AccountLimit[]>;
  /** the account's leases billed at any time from `since` on (active, or ended after it) */
  leaseIdsSince(accountId: string, since: number): Promise<string[]>;
  activeLeaseIds(accountId: string): Promise<string[]>;
  /** jobs and kernels queued or running on the lease */
  openJobIds(leaseId: string): Promise<string[]>;
  /**
   * Active leases taken for one session (its spec's releaseLease) whose session is still open
   * though its cancel was asked for at or before `before`; with the time it was asked.
   */
  cancelledSessionLeases(before: number): Promise<{ leaseId: string; cancelAt: number }[]>;
}

/** The rows both backends read. */
export interface LimitRow {
  lease_id: string;
  max_cost: number | null;
  idle_release_ms: number | null;
  warning: string | null;
  end_reason: string | null;
}

export const limitsOf = (r: LimitRow): LeaseLimits => ({
  leaseId: r.lease_id,
  maxCost: r.max_cost,
  idleReleaseMs: r.idle_release_ms,
  warning: r.warning,
  endReason: r.end_reason,
});

export interface AccountRow {
  account_id: string;
  spend_limit: number | null;
  warned_period: number | null;
}

export const accountOf = (r: AccountRow): AccountLimit => ({ accountId: r.account_id, spendLimit: r.spend_limit, warnedPeriod: r.warned_period });
