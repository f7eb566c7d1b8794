// The durable per-job event log. An event is committed to the database, together with what it
// changes in the job's row, before anyone is told about it; followers then read from the database,
// so a slow follower costs the broker no memory and a reconnecting one resumes from any sequence
// number. With several replicas on one PostgreSQL database, every replica hears of every commit
// (LISTEN/NOTIFY carries job id and seq) and its followers read the rows themselves.
import { EventEmitter } from 'node:events';
import { isTerminal, type EventBody, type JobEvent } from '../shared/protocol';
import type { AppendPlan } from './store/events-repo';
import type { JobRow, RawEventRow } from './store/rows';
import type { Store } from './store/store';

export type { JobRow } from './store/rows';

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


type RawRow = RawEventRow;

/** Bytes of recent rows kept per open job, so live followers need not read back what was just written. */
const TAIL_BYTES = 8 << 20;
/** Jobs whose tails a replica keeps at most. */
const MAX_TAILS = 2000;

export class EventLog {
  private readonly bus = new EventEmitter();
  // The last rows of each job that is not finished, in seq order, as this replica appended them.
  // The database stays the truth: a follower that asks for anything the tail does not hold (older,
  // or appended by another replica) reads it from there.
  private readonly tails = new Map<string, { rows: RawRow[]; bytes: number }>();
  /** jobs whose events cannot be stored right now, and why: followers are told, in memory only */
  private readonly stalls = new Map<string, string>();

  /**
   * PostgreSQL only: the last seq each job's notifications announced, so a follower that has read
   * up to it waits without asking the database again. A notification missed (the LISTEN connection
   * dropped) only delays a follower until its next ping, when it reads again.
   */
  private readonly latest = new Map<string, number>();

  private noteLatest(jobId: string, seq: number): void {
    if (seq <= (this.latest.get(jobId) ?? 0)) return;
    this.latest.delete(jobId);
    if (this.latest.size >= MAX_TAILS * 10) this.latest.delete(this.latest.keys().next().value!);
    this.latest.set(jobId, seq);
  }

  /** Called once when a job's output first passes the cap (the broker stops the job). */
  onCapped: (job: JobRow) => Promise<void> = async () => {};

  constructor(
    private readonly store: Store,
    /** bytes of output one job's log may hold; beyond it output is dropped and the job stopped */
    private readonly maxJobEventBytes = Infinity,
  ) {
    this.bus.setMaxListeners(0);
    // Commits of every replica (this one's too) wake this replica's followers.
    store.onEvent((jobId, seq) => {
      if (store.kind === 'postgres') this.noteLatest(jobId, seq);
      this.bus.emit(jobId, seq);
    });
  }

  /** Called after a job's terminal status is committed (the broker starts the lease's next job). */
  onEnded: (job: JobRow) => Promise<void> = async () => {};

  /**
   * Appends one event. `wseq` is the worker's own counter (0 for the broker's own events): only
   * `last_wseq + 1` is taken. A status event moves the job's row in the same transaction. A storage
   * failure (a full disk, a lost database connection) throws and changes nothing, so the worker
   * sends the same event again.
   *
   * Order with asynchronous writes: the repository reads the job's head and writes the event in one
   * transaction that holds the job's row (better-sqlite3 runs it without yielding; PostgreSQL takes
   * the row with SELECT … FOR UPDATE), so two appends to one job — from two sockets or two replicas
   * — never both see the same last_wseq. The worker hub handles one socket's messages one after
   * another and sends an ack only after this promise resolves, i.e. after the commit, so acks leave
   * in wseq order and an acked event is durable.
   */
  async append(jobId: string, body: EventBody, wseq = 0): Promise<AppendResult> {
    const now = Date.now();
    let row: RawRow | undefined;
    let capped = false;
    const max = this.maxJobEventBytes;
    const { result, ended } = await this.store.events.append(jobId, (job): AppendPlan<AppendResult> => {
      // Runs under the job's lock; it may run again if the database retries the transaction.
      row = undefined;
      capped = false;
      let b = body;
      if (wseq > 0 && wseq <= job.last_wseq) return { result: { kind: 'repeat', seq: job.last_seq } };
      if (isTerminal(job.status)) return { result: { kind: 'ended', seq: job.last_seq } };
      if (wseq > job.last_wseq + 1) return { result: { kind: 'gap', lastWseq: job.last_wseq } };
      let text = JSON.stringify(b);
      if (CAPPED.has(b.type) && job.event_bytes + text.length > max) {
        if (job.event_bytes <= max) {
          // The first event over the cap: the log says so once, and the job is stopped.
          capped = true;
          b = { type: 'notice', level: 'error', message: `the job's output passed the broker's limit of ${formatBytes(max)}; further output is dropped and the job is stopped` };
          text = JSON.stringify(b);
        } else {
          // Taken (the worker's sequence goes on) but not stored.
          return { result: { kind: 'capped', seq: job.last_seq }, bump: { lastSeq: job.last_seq, wseq, addBytes: 0 } };
        }
      }
      const seq = job.last_seq + 1;
      row = { seq, ts: now, body: text };
      const plan: AppendPlan<AppendResult> = {
        result: { kind: 'appended', seq },
        insert: { seq, ts: now, body: text, type: b.type },
        bump: { lastSeq: seq, wseq, addBytes: capped ? max + 1 - job.event_bytes : CAPPED.has(b.type) ? text.length : 0 },
      };
      if (b.type === 'status') {
        if (b.status === 'running') plan.running = now;
        else if (isTerminal(b.status)) plan.end = { status: b.status, at: now, exitCode: b.exitCode ?? null, reason: b.reason ?? null };
      }
      return plan;
    });
    if (result.kind === 'appended' && row) {
      if (ended) this.tails.delete(jobId);
      else this.remember(jobId, row);
      if (ended) await this.onEnded(ended);
      if (capped) await this.onCapped((await this.store.jobs.get(jobId))!);
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

  /** The job's log was read to its end: its tail is no longer needed here. */
  forgetTail(jobId: string): void {
    this.tails.delete(jobId);
  }

  private remember(jobId: string, row: RawRow): void {
    let t = this.tails.get(jobId);
    if (!t) {
      // Tails of jobs that ended on another replica are not dropped by an append here: keep the
      // most recently started MAX_TAILS.
      if (this.tails.size >= MAX_TAILS) this.tails.delete(this.tails.keys().next().value!);
      this.tails.set(jobId, (t = { rows: [], bytes: 0 }));
    }
    // A gap (rows another replica appended, or a tail dropped earlier) starts a fresh tail.
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

  async read(jobId: string, afterSeq: number, limit = 500): Promise<JobEvent[]> {
    return (await this.store.events.read(jobId, afterSeq, limit)).map((r) => ({ seq: r.seq, ts: r.ts, body: JSON.parse(r.body) as EventBody }));
  }

  /**
   * Raw rows, for the follow route that writes them out without parsing and re-serialising.
   * A page stops at `maxBytes` (but holds at least one row), so a log of 4 MiB events does not
   * pull a thousand of them into memory at once.
   */
  async readRaw(jobId: string, afterSeq: number, limit = 1000, maxBytes = 8 << 20): Promise<RawRow[]> {
    const out: RawRow[] = [];
    let bytes = 0;
    const tail = this.tails.get(jobId);
    const first = tail?.rows[0];
    const last = tail?.rows[tail.rows.length - 1];
    // The tail serves only when it holds the very next row: rows after it may have been appended
    // by another replica, and are read from the database.
    let source: Iterable<RawRow>;
    if (tail && first && last && first.seq <= afterSeq + 1 && last.seq >= afterSeq + 1) {
      source = tail.rows.slice(afterSeq + 1 - first.seq, afterSeq + 1 - first.seq + limit);
    } else if ((this.latest.get(jobId) ?? Infinity) <= afterSeq) {
      // Nothing after afterSeq was announced: no need to ask.
      source = [];
    } else {
      const rows = await this.store.events.read(jobId, afterSeq, limit);
      // Rows another replica appended extend this replica's tail, so the job's other followers
      // here need not read them again (rows never change once stored).
      if (this.store.kind === 'postgres' && rows.length && (!last || rows[0]!.seq === last.seq + 1)) {
        for (const r of rows) this.remember(jobId, r);
      }
      source = rows;
    }
    for (const r of source) {
      out.push(r);
      bytes += r.body.length;
      if (bytes >= maxBytes) break;
    }
    return out;
  }

  job(jobId: string): Promise<JobRow | undefined> {
    return this.store.jobs.get(jobId);
  }

  /** Resolves when the job has an event after `afterSeq`, after `ms`, or when `signal` aborts. */
  waitFor(jobId: string, afterSeq: number, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let finished = false;
      const done = () => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        this.bus.off(jobId, onEvent);
        signal.removeEventListener('abort', done);
        resolve();
      };
      // -1: the job's stall state changed, which followers report too.
      const onEvent = (seq: number) => {
        if (seq > afterSeq || seq === -1) done();
      };
      // Listening first, then reading the job: a commit between the two still wakes us.
      const timer = setTimeout(done, ms);
      this.bus.on(jobId, onEvent);
      signal.addEventListener('abort', done, { once: true });
      if (signal.aborted) return done();
      const known = this.latest.get(jobId);
      if (known !== undefined) {
        if (known > afterSeq) done();
        return;
      }
      this.store.jobs.get(jobId).then(
        (job) => {
          if (!job || job.last_seq > afterSeq) done();
        },
        () => done(),
      );
    });
  }
}

function formatBytes(n: number): string {
  return n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${Math.round(n / 1024)} KiB`;
}
