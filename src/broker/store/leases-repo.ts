import type { LeaseRow } from './rows';

export interface LeasesRepo {
  get(id: string): Promise<LeaseRow | undefined>;
  /** the lease if it belongs to this account */
  owned(id: string, accountId: string): Promise<LeaseRow | undefined>;
  ofAccount(accountId: string): Promise<LeaseRow[]>;
  /** the JSON gpu_indices of the worker's active leases */
  activeIndices(workerId: string): Promise<string[]>;
  /**
   * the JSON gpu_indices of the worker's ended leases whose jobs still hold their devices (sent to
   * the worker and not ended: stopping, uploading, or never told to stop)
   */
  drainingIndices(workerId: string): Promise<string[]>;
  insert(row: Omit<LeaseRow, 'ended_at' | 'away_since' | 'away_ms' | 'status' | 'waiting_since'> & { waiting_since?: number | null }): Promise<void>;
  /** the worker's active leases that wait for their devices */
  waitingOf(workerId: string): Promise<LeaseRow[]>;
  /** a waiting lease gets its devices at `now`: billed from then, its end moved by the wait; false when it was not waiting */
  start(id: string, now: number): Promise<boolean>;
  setExpiry(id: string, expiresAt: number): Promise<void>;
  /** active leases whose time is up at `now` */
  due(now: number): Promise<LeaseRow[]>;
  /** ends an active lease; false when it had ended already (another replica, another call) */
  end(id: string, status: 'released' | 'expired', at: number): Promise<boolean>;
  /** marks the worker's active leases away from `since` (not before each one's start); how many changed */
  markAway(workerId: string, since: number): Promise<number>;
  awayOf(workerId: string): Promise<LeaseRow[]>;
  clearAway(id: string, awayMs: number): Promise<void>;
  /** the worker's stack (JSON) behind one of the account's leases */
  workerStack(leaseId: string, accountId: string): Promise<{ stack: string | null } | undefined>;
  workerName(workerId: string): Promise<string | undefined>;
}
