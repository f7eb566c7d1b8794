// The rows the repositories hand to the domain: the same shape on every backend (snake_case, times
// in epoch milliseconds, JSON kept as text), so the services never know which database they run on.
import type { JobStatus, LeaseStatus } from '../../shared/protocol';

export interface TokenRow {
  id: string;
  account_id: string;
  kind: 'user' | 'worker';
  label: string;
  prefix: string;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
  revoked_at: number | null;
}

/** A token with its account, as authentication reads it. */
export interface AuthRow {
  tokenId: string;
  kind: 'user' | 'worker';
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
  accountId: string;
  name: string;
  isAdmin: number;
}

export interface NewToken {
  hash: string;
  id: string;
  account_id: string;
  kind: 'user' | 'worker';
  label: string;
  prefix: string;
  created_at: number;
  expires_at: number | null;
}

export interface WorkerRow {
  id: string;
  account_id: string;
  name: string;
  hostname: string;
  version: string;
  /** JSON GpuInfo[] */
  gpus: string;
  price_per_hour: number;
  last_seen: number;
  /** JSON PythonStack, or null when the worker did not say */
  stack: string | null;
}

export interface LeaseRow {
  id: string;
  account_id: string;
  worker_id: string;
  gpu_model: string;
  /** JSON number[] */
  gpu_indices: string;
  count: number;
  price_per_hour: number;
  created_at: number;
  expires_at: number;
  ended_at: number | null;
  status: LeaseStatus;
  /** when its worker went away (billing stops there), null while it is connected */
  away_since: number | null;
  /** time the worker was away before, not billed */
  away_ms: number;
  /**
   * set while the lease waits for its devices (a job of an ended lease still runs on them): not
   * billed, nothing dispatched; when they are free, created_at becomes that moment
   */
  waiting_since: number | null;
}

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

/** One stored event, its body still JSON text (the follow route writes it out as it is). */
export interface RawEventRow {
  seq: number;
  ts: number;
  body: string;
}
