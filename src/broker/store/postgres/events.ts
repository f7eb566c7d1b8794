import type { AppendPlan, EventsRepo, JobHead } from '../events-repo';
import type { JobRow, RawEventRow } from '../rows';
import { transaction, type Sql } from './sql';

/** The channel every replica LISTENs on; a notification is `<jobId> <seq>`. */
export const EVENTS_CHANNEL = 'hearth_events';

export class PgEvents implements EventsRepo {
  constructor(private readonly sql: Sql) {}

  // The job's row is taken FOR UPDATE before its head is read, so appends to one job — from any
  // connection of any replica — run one after another, each seeing the last one's commit. The
  // NOTIFY is part of the transaction: PostgreSQL delivers it only if, and after, it commits, and
  // in commit order.
  async append<R>(jobId: string, decide: (head: JobHead) => AppendPlan<R>): Promise<{ result: R; ended?: JobRow }> {
    return transaction(this.sql, async (tx) => {
      const [head] = await tx<JobHead[]>`SELECT status, last_seq, last_wseq, event_bytes FROM jobs WHERE id = ${jobId} FOR UPDATE`;
      if (!head) throw new Error(`no job ${jobId}`);
      const plan = decide(head);
      const b = plan.bump;
      if (plan.insert && b) {
        const e = plan.insert;
        // One round trip: the row, the job's counters and the notification.
        await tx`
          WITH ins AS (INSERT INTO events (job_id, seq, ts, body) VALUES (${jobId}, ${e.seq}, ${e.ts}, ${e.body})),
          upd AS (
            UPDATE jobs SET last_seq = ${b.lastSeq}, last_wseq = GREATEST(last_wseq, ${b.wseq}), event_bytes = event_bytes + ${b.addBytes},
              status = CASE WHEN ${plan.running ?? null}::bigint IS NOT NULL THEN 'running' ELSE status END,
              started_at = CASE WHEN ${plan.running ?? null}::bigint IS NOT NULL THEN COALESCE(started_at, ${plan.running ?? null}::bigint) ELSE started_at END
            WHERE id = ${jobId} RETURNING 1
          )
          SELECT pg_notify(${EVENTS_CHANNEL}, ${`${jobId} ${e.seq}`}) FROM upd`;
      } else if (b) {
        await tx`UPDATE jobs SET last_seq = ${b.lastSeq}, last_wseq = GREATEST(last_wseq, ${b.wseq}), event_bytes = event_bytes + ${b.addBytes} WHERE id = ${jobId}`;
      }
      let ended: JobRow | undefined;
      if (plan.end) {
        const x = plan.end;
        [ended] = await tx<JobRow[]>`UPDATE jobs SET status = ${x.status}, ended_at = ${x.at}, exit_code = ${x.exitCode}, reason = ${x.reason} WHERE id = ${jobId} RETURNING *`;
      }
      return ended ? { result: plan.result, ended } : { result: plan.result };
    }) as Promise<{ result: R; ended?: JobRow }>;
  }

  async read(jobId: string, afterSeq: number, limit: number): Promise<RawEventRow[]> {
    return [...(await this.sql<RawEventRow[]>`SELECT seq, ts, body FROM events WHERE job_id = ${jobId} AND seq > ${afterSeq} ORDER BY seq LIMIT ${limit}`)];
  }
}
