import type { AppendPlan, EventsRepo, JobHead } from '../events-repo';
import type { JobRow, RawEventRow } from '../rows';
import type { Db } from './db';

export class SqliteEvents implements EventsRepo {
  private readonly stmts;

  constructor(
    private readonly db: Db,
    private readonly committed: (jobId: string, seq: number) => void,
  ) {
    this.stmts = {
      job: db.prepare<[string], JobRow>('SELECT * FROM jobs WHERE id = ?'),
      head: db.prepare<[string], JobHead>('SELECT status, last_seq, last_wseq, event_bytes FROM jobs WHERE id = ?'),
      insert: db.prepare('INSERT INTO events (job_id, seq, ts, body) VALUES (?, ?, ?, ?)'),
      bump: db.prepare('UPDATE jobs SET last_seq = ?, last_wseq = MAX(last_wseq, ?), event_bytes = event_bytes + ? WHERE id = ?'),
      running: db.prepare("UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?) WHERE id = ?"),
      end: db.prepare('UPDATE jobs SET status = ?, ended_at = ?, exit_code = ?, reason = ? WHERE id = ?'),
      read: db.prepare<[string, number, number], RawEventRow>('SELECT seq, ts, body FROM events WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?'),
    };
  }

  // better-sqlite3 runs the whole transaction synchronously, so no other append (of this process,
  // the only one writing the file) can come between the read of the head and the commit.
  async append<R>(jobId: string, decide: (head: JobHead) => AppendPlan<R>): Promise<{ result: R; ended?: JobRow }> {
    let ended: JobRow | undefined;
    let seq: number | undefined;
    const result = this.db.transaction((): R => {
      const head = this.stmts.head.get(jobId);
      if (!head) throw new Error(`no job ${jobId}`);
      const plan = decide(head);
      if (plan.insert) {
        this.stmts.insert.run(jobId, plan.insert.seq, plan.insert.ts, plan.insert.body);
        seq = plan.insert.seq;
      }
      if (plan.bump) this.stmts.bump.run(plan.bump.lastSeq, plan.bump.wseq, plan.bump.addBytes, jobId);
      if (plan.running !== undefined) this.stmts.running.run(plan.running, jobId);
      if (plan.end) {
        this.stmts.end.run(plan.end.status, plan.end.at, plan.end.exitCode, plan.end.reason, jobId);
        ended = this.stmts.job.get(jobId);
      }
      return plan.result;
    })();
    if (seq !== undefined) this.committed(jobId, seq);
    return ended ? { result, ended } : { result };
  }

  async read(jobId: string, afterSeq: number, limit: number): Promise<RawEventRow[]> {
    return this.stmts.read.all(jobId, afterSeq, limit);
  }
}
