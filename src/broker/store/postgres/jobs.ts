import type { JobsRepo, NewJob } from '../jobs-repo';
import type { JobRow } from '../rows';
import { transaction, type Sql } from './sql';

export class PgJobs implements JobsRepo {
  constructor(private readonly sql: Sql) {}

  async get(id: string): Promise<JobRow | undefined> {
    const [r] = await this.sql<JobRow[]>`SELECT * FROM jobs WHERE id = ${id}`;
    return r;
  }

  async insert(j: NewJob, spec: string, hashes: string[]): Promise<void> {
    await transaction(this.sql, async (tx) => {
      await tx`INSERT INTO jobs (id, account_id, lease_id, worker_id, entry, kind, status, created_at, dispatched_at)
        VALUES (${j.id}, ${j.account_id}, ${j.lease_id}, ${j.worker_id}, ${j.entry}, ${j.kind}, 'queued', ${j.created_at}, NULL)`;
      await tx`INSERT INTO job_specs (job_id, spec) VALUES (${j.id}, ${spec})`;
      // In pages: a manifest may name 200 000 blobs, more than one statement's parameters.
      for (let i = 0; i < hashes.length; i += 10_000) {
        const page = hashes.slice(i, i + 10_000);
        await tx`INSERT INTO job_blobs (job_id, sha256) SELECT ${j.id}, unnest(${page}::text[]) ON CONFLICT DO NOTHING`;
      }
    });
  }

  async spec(jobId: string): Promise<string | undefined> {
    const [r] = await this.sql<{ spec: string }[]>`SELECT spec FROM job_specs WHERE job_id = ${jobId}`;
    return r?.spec;
  }

  async ofAccount(accountId: string, limit: number): Promise<JobRow[]> {
    return [...(await this.sql<JobRow[]>`SELECT * FROM jobs WHERE account_id = ${accountId} ORDER BY created_at DESC LIMIT ${limit}`)];
  }

  async openOnWorker(workerId: string): Promise<JobRow[]> {
    return [...(await this.sql<JobRow[]>`SELECT * FROM jobs WHERE worker_id = ${workerId} AND status IN ('queued', 'running') ORDER BY ord`)];
  }

  async takenOnWorker(workerId: string): Promise<string[]> {
    return (
      await this.sql<{ id: string }[]>`SELECT id FROM jobs WHERE worker_id = ${workerId} AND (status = 'running' OR (status = 'queued' AND accepted_at IS NOT NULL))`
    ).map((r) => r.id);
  }

  async runningOnWorker(workerId: string): Promise<string[]> {
    return (await this.sql<{ id: string }[]>`SELECT id FROM jobs WHERE worker_id = ${workerId} AND status = 'running'`).map((r) => r.id);
  }

  async openOnLease(leaseId: string): Promise<JobRow[]> {
    return [...(await this.sql<JobRow[]>`SELECT * FROM jobs WHERE lease_id = ${leaseId} AND status IN ('queued', 'running') ORDER BY ord`)];
  }

  async countOpenOnLease(leaseId: string, exceptId: string): Promise<number> {
    const [r] = await this.sql<{ n: number }[]>`SELECT COUNT(*)::int AS n FROM jobs WHERE lease_id = ${leaseId} AND status IN ('queued', 'running') AND id <> ${exceptId}`;
    return r!.n;
  }

  async claimTurn(leaseId: string, now: number): Promise<{ holder?: string; claimed?: JobRow }> {
    // The lease's row is the turn's lock: two replicas ending and submitting jobs on one lease at
    // once take turns here, so only one job is ever dispatched on it.
    return transaction(this.sql, async (tx): Promise<{ holder?: string; claimed?: JobRow }> => {
      const [lease] = await tx<{ status: string }[]>`SELECT status FROM leases WHERE id = ${leaseId} FOR UPDATE`;
      if (lease?.status !== 'active') return {};
      const [holder] = await tx<{ id: string }[]>`
        SELECT id FROM jobs WHERE lease_id = ${leaseId} AND status IN ('queued', 'running') AND dispatched_at IS NOT NULL LIMIT 1`;
      if (holder) return { holder: holder.id };
      const [next] = await tx<JobRow[]>`
        UPDATE jobs SET dispatched_at = ${now} WHERE id = (
          SELECT id FROM jobs WHERE lease_id = ${leaseId} AND status = 'queued' AND dispatched_at IS NULL ORDER BY ord LIMIT 1
        ) RETURNING *`;
      return next ? { holder: next.id, claimed: next } : {};
    });
  }

  async setCancelReason(id: string, reason: string, at: number): Promise<void> {
    await this.sql`UPDATE jobs SET cancel_reason = COALESCE(cancel_reason, ${reason}), cancel_requested_at = COALESCE(cancel_requested_at, ${at}) WHERE id = ${id}`;
  }

  async accept(id: string, workerId: string, at: number): Promise<void> {
    await this.sql`UPDATE jobs SET accepted_at = COALESCE(accepted_at, ${at}) WHERE id = ${id} AND worker_id = ${workerId}`;
  }

  async takenBySilentWorkers(before: number): Promise<JobRow[]> {
    return [
      ...(await this.sql<JobRow[]>`
        SELECT j.* FROM jobs j JOIN workers w ON w.id = j.worker_id
        WHERE (j.status = 'running' OR (j.status = 'queued' AND j.accepted_at IS NOT NULL)) AND w.last_seen < ${before}`),
    ];
  }
}
