// The durable per-job event log. An event is committed to SQLite, together with what it changes
// in the job's row, before anyone is told about it; followers then read from the database, so a
// slow follower costs the broker no memory and a reconnecting one resumes from any sequence number.
import { EventEmitter } from 'node:events';
import { isTerminal, type EventBody, type JobEvent, type JobStatus } from '../shared/protocol';
import type { Db } from './store/db';

/**
 * What became of an appended event. The log of a job is gap-free: an event of the worker's is taken
 * only as exactly the next one it holds (`last_wseq + 1`); a repeat is dropped, a skip ahead is
 * refused, and nothing is added to a job that has ended.
 */
export type AppendResult =
  | { kind: 'appended'; seq: number }
  /** the worker's wseq was already held: a resend after a reconnect */
  | { kind: 'repeat'; seq: number }
  /** the worker's wseq skips ahead of what the job holds: refused, the worker must send lastWseq + 1 */
  | { kind: 'gap'; lastWseq: number }
  /** the job has ended: nothing more goes into its log */
  | { kind: 'ended'; seq: number }
  /** the job's output passed its cap: the event is counted as taken but not stored */
  | { kind: 'capped'; seq: number };

/** Events that are output, and so count against a job's cap (status, artifacts and notices never do). */
const CAPPED = new Set<EventBody['type']>(['log', 'scalars', 'telemetry', 'kernel']);

export interface JobRow {
  id: string;
  account_id: string;
  lease_id: string;
  worker_id: string;
  entry: string;
  status: JobStatus;
  created_at: number;
  accepted_at: number | null;
  started_at: number | null;
  ended_at: number | null;
  exit_code: number | null;
  reason: string | null;
  cancel_reason: string | null;
  last_seq: number;
  last_wseq: number;
  dispatched_at: number | null;
  event_bytes: number;
  kind: 'job' | 'kernel';
}

type RawRow = { seq: number; ts: number; body: string };

/** Bytes of recent rows kept per open job, so live followers need not read back what was just written. */
const TAIL_BYTES = 8 << 20;

export class EventLog {
  private readonly bus = new EventEmitter();
  // The last rows of each job that is not finished, in seq order. The database stays the truth:
  // a follower that asks for anything older than the tail reads it from there.
  private readonly tails = new Map<string, { rows: RawRow[]; bytes: number }>();
  /** jobs whose events cannot be stored right now, and why: followers are told, in memory only */
  private readonly stalls = new Map<string, string>();
  private readonly stmts;

  /** Called once when a job's output first passes the cap (the broker stops the job). */
  onCapped: (job: JobRow) => void = () => {};

  constructor(
    private readonly db: Db,
    /** bytes of output one job's log may hold; beyond it output is dropped and the job stopped */
    private readonly maxJobEventBytes = Infinity,
  ) {
    this.bus.setMaxListeners(0);
    this.stmts = {
      job: db.prepare<[string], JobRow>('SELECT * FROM jobs WHERE id = ?'),
      // What an append needs, without the spec (a manifest of many thousand files).
      head: db.prepare<[string], Pick<JobRow, 'status' | 'last_seq' | 'last_wseq' | 'event_bytes'>>(
        'SELECT status, last_seq, last_wseq, event_bytes FROM jobs WHERE id = ?',
      ),
      insert: db.prepare('INSERT INTO events (job_id, seq, ts, body) VALUES (?, ?, ?, ?)'),
      bump: db.prepare('UPDATE jobs SET last_seq = ?, last_wseq = MAX(last_wseq, ?), event_bytes = event_bytes + ? WHERE id = ?'),
      running: db.prepare("UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?) WHERE id = ?"),
      end: db.prepare('UPDATE jobs SET status = ?, ended_at = ?, exit_code = ?, reason = ? WHERE id = ?'),
      read: db.prepare<[string, number, number], { seq: number; ts: number; body: string }>(
        'SELECT seq, ts, body FROM events WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?',
      ),
    };
  }

  /** Called after a job's terminal status is committed (the broker starts the lease's next job). */
  onEnded: (job: JobRow) => void = () => {};

  /**
   * Appends one event. `wseq` is the worker's own counter (0 for the broker's own events): only
   * `last_wseq + 1` is taken. A status event moves the job's row in the same transaction. A storage
   * failure (a full disk) throws and changes nothing, so the worker sends the same event again.
   */
  append(jobId: string, body: EventBody, wseq = 0): AppendResult {
    const now = Date.now();
    let row: RawRow | undefined;
    let ended: JobRow | undefined;
    let capped = false;
    const result = this.db.transaction((): AppendResult => {
      const job = this.stmts.head.get(jobId);
      if (!job) throw new Error(`no job ${jobId}`);
      if (wseq > 0 && wseq <= job.last_wseq) return { kind: 'repeat', seq: job.last_seq };
      if (isTerminal(job.status)) return { kind: 'ended', seq: job.last_seq };
      if (wseq > job.last_wseq + 1) return { kind: 'gap', lastWseq: job.last_wseq };
      let text = JSON.stringify(body);
      if (CAPPED.has(body.type) && job.event_bytes + text.length > this.maxJobEventBytes) {
        if (job.event_bytes <= this.maxJobEventBytes) {
          // The first event over the cap: the log says so once, and the job is stopped.
          capped = true;
          body = { type: 'notice', level: 'error', message: `the job's output passed the broker's limit of ${formatBytes(this.maxJobEventBytes)}; further output is dropped and the job is stopped` };
          text = JSON.stringify(body);
        } else {
          // Taken (the worker's sequence goes on) but not stored.
          this.stmts.bump.run(job.last_seq, wseq, 0, jobId);
          return { kind: 'capped', seq: job.last_seq };
        }
      }
      const seq = job.last_seq + 1;
      this.stmts.insert.run(jobId, seq, now, text);
      row = { seq, ts: now, body: text };
      this.stmts.bump.run(seq, wseq, capped ? this.maxJobEventBytes + 1 - job.event_bytes : CAPPED.has(body.type) ? text.length : 0, jobId);
      if (body.type === 'status') {
        if (body.status === 'running') this.stmts.running.run(now, jobId);
        else if (isTerminal(body.status)) {
          this.stmts.end.run(body.status, now, body.exitCode ?? null, body.reason ?? null, jobId);
          ended = this.stmts.job.get(jobId);
        }
      }
      return { kind: 'appended', seq };
    })();
    if (result.kind === 'appended' && row) {
      if (ended) this.tails.delete(jobId);
      else this.remember(jobId, row);
      this.bus.emit(jobId, result.seq);
      if (ended) this.onEnded(ended);
      if (capped) this.onCapped(this.stmts.job.get(jobId)!);
    }
    return result;
  }

  /** Marks the job's output as paused for `reason`; true when that is news. Followers wake to say so. */
  stall(jobId: string, reason: string): boolean {
    if (this.stalls.get(jobId) === reason) return false;
    this.stalls.set(jobId, reason);
    this.bus.emit(jobId, -1);
    return true;
  }

  unstall(jobId: string): void {
    if (this.stalls.delete(jobId)) this.bus.emit(jobId, -1);
  }

  stalled(jobId: string): string | undefined {
    return this.stalls.get(jobId);
  }

  private remember(jobId: string, row: RawRow): void {
    let t = this.tails.get(jobId);
    if (!t) this.tails.set(jobId, (t = { rows: [], bytes: 0 }));
    // A gap (the tail was dropped, e.g. by a terminal status seen earlier) starts a fresh tail.
    if (t.rows.length && t.rows[t.rows.length - 1]!.seq !== row.seq - 1) {
      t.rows = [];
      t.bytes = 0;
    }
    t.rows.push(row);
    t.bytes += row.body.length;
    let drop = 0;
    while (t.bytes > TAIL_BYTES && drop < t.rows.length - 1) t.bytes -= t.rows[drop++]!.body.length;
    if (drop) t.rows.splice(0, drop);
  }

  read(jobId: string, afterSeq: number, limit = 500): JobEvent[] {
    return this.stmts.read.all(jobId, afterSeq, limit).map((r) => ({ seq: r.seq, ts: r.ts, body: JSON.parse(r.body) as EventBody }));
  }

  /**
   * Raw rows, for the follow route that writes them out without parsing and re-serialising.
   * A page stops at `maxBytes` (but holds at least one row), so a log of 4 MiB events does not
   * pull a thousand of them into memory at once.
   */
  readRaw(jobId: string, afterSeq: number, limit = 1000, maxBytes = 8 << 20): RawRow[] {
    const out: RawRow[] = [];
    let bytes = 0;
    const tail = this.tails.get(jobId);
    const first = tail?.rows[0];
    const source: Iterable<RawRow> =
      tail && first && first.seq <= afterSeq + 1
        ? tail.rows.slice(afterSeq + 1 - first.seq, afterSeq + 1 - first.seq + limit)
        : this.stmts.read.iterate(jobId, afterSeq, limit);
    for (const r of source) {
      out.push(r);
      bytes += r.body.length;
      if (bytes >= maxBytes) break;
    }
    return out;
  }

  job(jobId: string): JobRow | undefined {
    return this.stmts.job.get(jobId);
  }

  /** Resolves when the job has an event after `afterSeq`, after `ms`, or when `signal` aborts. */
  waitFor(jobId: string, afterSeq: number, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const job = this.stmts.job.get(jobId);
      if (!job || job.last_seq > afterSeq || signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        this.bus.off(jobId, onEvent);
        signal.removeEventListener('abort', done);
        resolve();
      };
      // -1: the job's stall state changed, which followers report too.
      const onEvent = (seq: number) => {
        if (seq > afterSeq || seq === -1) done();
      };
      const timer = setTimeout(done, ms);
      this.bus.on(jobId, onEvent);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

function formatBytes(n: number): string {
  return n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${Math.round(n / 1024)} KiB`;
}
