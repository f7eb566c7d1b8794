import type { JobsRepo, NewJob } from '../jobs-repo';
import type { JobRow } from '../rows';
import type { Db } from './db';

export class SqliteJobs implements JobsRepo {
  constructor(private readonly db: Db) {}

  async get(id: string): Promise<JobRow | undefined> {
    return this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
  }

  async insert(j: NewJob, spec: string, hashes: string[]): Promise<void> {
    this.db.transaction(() => {
      this.db
        .prepare("INSERT INTO jobs (id, account_id, lease_id, worker_id, entry, kind, status, created_at, dispatched_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, NULL)")
        .run(j.id, j.account_id, j.lease_id, j.worker_id, j.entry, j.kind, j.created_at);
      this.db.prepare('INSERT INTO job_specs (job_id, spec) VALUES (?, ?)').run(j.id, spec);
      const link = this.db.prepare('INSERT OR IGNORE INTO job_blobs (job_id, sha256) VALUES (?, ?)');
      for (const h of hashes) link.run(j.id, h);
    })();
  }

  async spec(jobId: string): Promise<string | undefined> {
    return (this.db.prepare('SELECT spec FROM job_specs WHERE job_id = ?').get(jobId) as { spec: string } | undefined)?.spec;
  }

  async ofAccount(accountId: string, limit: number): Promise<JobRow[]> {
    return this.db.prepare('SELECT * FROM jobs WHERE account_id = ? ORDER BY created_at DESC LIMIT ?').all(accountId, limit) as JobRow[];
  }

  async openOnWorker(workerId: string): Promise<JobRow[]> {
    return this.db.prepare("SELECT * FROM jobs WHERE worker_id = ? AND status IN ('queued', 'running')").all(workerId) as JobRow[];
  }

  async takenOnWorker(workerId: string): Promise<string[]> {
    return (this.db.prepare("SELECT id FROM jobs WHERE worker_id = ? AND (status = 'running' OR (status = 'queued' AND accepted_at IS NOT NULL))").all(workerId) as { id: string }[]).map((r) => r.id);
  }

  async runningOnWorker(workerId: string): Promise<string[]> {
    return (this.db.prepare("SELECT id FROM jobs WHERE worker_id = ? AND status = 'running'").all(workerId) as { id: string }[]).map((r) => r.id);
  }

  async openOnLease(leaseId: string): Promise<JobRow[]> {
    return this.db.prepare("SELECT * FROM jobs WHERE lease_id = ? AND status IN ('queued', 'running')").all(leaseId) as JobRow[];
  }

  async countOpenOnLease(leaseId: string, exceptId: string): Promise<number> {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM jobs WHERE lease_id = ? AND status IN ('queued', 'running') AND id != ?").get(leaseId, exceptId) as { n: number }).n;
  }

  async claimTurn(leaseId: string, now: number): Promise<{ holder?: string; claimed?: JobRow }> {
    return this.db.transaction((): { holder?: string; claimed?: JobRow } => {
      const lease = this.db.prepare('SELECT status FROM leases WHERE id = ?').get(leaseId) as { status: string } | undefined;
      if (lease?.status !== 'active') return {};
      const holder = this.db
        .prepare("SELECT id FROM jobs WHERE lease_id = ? AND status IN ('queued', 'running') AND dispatched_at IS NOT NULL LIMIT 1")
        .get(leaseId) as { id: string } | undefined;
      if (holder) return { holder: holder.id };
      const next = this.db.prepare("SELECT id FROM jobs WHERE lease_id = ? AND status = 'queued' AND dispatched_at IS NULL ORDER BY rowid LIMIT 1").get(leaseId) as
        | { id: string }
        | undefined;
      if (!next) return {};
      this.db.prepare('UPDATE jobs SET dispatched_at = ? WHERE id = ?').run(now, next.id);
      return { holder: next.id, claimed: this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(next.id) as JobRow };
    })();
  }

  async setCancelReason(id: string, reason: string, at: number): Promise<void> {
    this.db.prepare('UPDATE jobs SET cancel_reason = COALESCE(cancel_reason, ?), cancel_requested_at = COALESCE(cancel_requested_at, ?) WHERE id = ?').run(reason, at, id);
  }

  async accept(id: string, workerId: string, at: number): Promise<void> {
    this.db.prepare('UPDATE jobs SET accepted_at = COALESCE(accepted_at, ?) WHERE id = ? AND worker_id = ?').run(at, id, workerId);
  }

  async takenBySilentWorkers(before: number): Promise<JobRow[]> {
    return this.db
      .prepare("SELECT j.* FROM jobs j JOIN workers w ON w.id = j.worker_id WHERE (j.status = 'running' OR (j.status = 'queued' AND j.accepted_at IS NOT NULL)) AND w.last_seen < ?")
      .all(before) as JobRow[];
  }
}
