import type { JobRow } from './rows';

export interface NewJob {
  id: string;
  account_id: string;
  lease_id: string;
  worker_id: string;
  entry: string;
  kind: 'job' | 'kernel';
  created_at: number;
}

/** Jobs and kernel sessions, their specs, and their turn on a lease. */
export interface JobsRepo {
  get(id: string): Promise<JobRow | undefined>;
  /** inserts the job (queued), its spec and its blob links in one transaction */
  insert(job: NewJob, spec: string, hashes: string[]): Promise<void>;
  spec(jobId: string): Promise<string | undefined>;
  ofAccount(accountId: string, limit: number): Promise<JobRow[]>;
  /** queued or running jobs of the worker */
  openOnWorker(workerId: string): Promise<JobRow[]>;
  /** running jobs of the worker, and queued ones it has accepted */
  takenOnWorker(workerId: string): Promise<string[]>;
  runningOnWorker(workerId: string): Promise<string[]>;
  openOnLease(leaseId: string): Promise<JobRow[]>;
  /** queued or running jobs on the lease other than `exceptId` */
  countOpenOnLease(leaseId: string, exceptId: string): Promise<number>;
  /**
   * The lease's turn, atomically (one replica at a time): the job holding the lease, or else the
   * oldest waiting one, marked dispatched at `now` (`claimed`). Nothing when the lease has ended.
   */
  claimTurn(leaseId: string, now: number): Promise<{ holder?: string; claimed?: JobRow }>;
  /** records why the job is stopped and when that was first asked (the first reason and time stay) */
  setCancelReason(id: string, reason: string, at: number): Promise<void>;
  accept(id: string, workerId: string, at: number): Promise<void>;
  /** jobs taken (running, or accepted and queued) by workers last heard from before `before` */
  takenBySilentWorkers(before: number): Promise<JobRow[]>;
}
