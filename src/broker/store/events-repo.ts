import type { EventBody } from '../../shared/protocol';
import type { JobRow, RawEventRow } from './rows';

/** What an append reads of the job, under its lock. */
export type JobHead = Pick<JobRow, 'status' | 'last_seq' | 'last_wseq' | 'event_bytes'>;

/** What the event log decided to write for one append; the repository writes it atomically. */
export interface AppendPlan<R> {
  result: R;
  /** the event row to insert, and what the job row's counters become */
  insert?: { seq: number; ts: number; body: string; type: EventBody['type'] };
  bump?: { lastSeq: number; wseq: number; addBytes: number };
  running?: number;
  end?: { status: string; at: number; exitCode: number | null; reason: string | null };
}

export interface EventsRepo {
  /**
   * One append, all or nothing: reads the job's head with the job row locked (so appends to one
   * job are serial across connections and replicas), lets `decide` plan the write, writes it and
   * commits. After the commit every replica is told (jobId, seq). Returns the plan's result and,
   * when the plan ended the job, its row after the commit. Throws when the job does not exist.
   */
  append<R>(jobId: string, decide: (head: JobHead) => AppendPlan<R>): Promise<{ result: R; ended?: JobRow }>;
  read(jobId: string, afterSeq: number, limit: number): Promise<RawEventRow[]>;
}
