import type { WorkerRow } from './rows';

export type WorkerFields = Pick<WorkerRow, 'name' | 'hostname' | 'version' | 'gpus' | 'price_per_hour' | 'stack' | 'last_seen'>;

/** Workers: what each offers, when it was last heard from, and which replica holds its socket. */
export interface WorkersRepo {
  get(id: string): Promise<WorkerRow | undefined>;
  /** the account's workers with this name and host, most recently seen first */
  byNameAndHost(accountId: string, name: string, hostname: string): Promise<WorkerRow[]>;
  insert(row: WorkerRow & { created_at: number }): Promise<void>;
  update(id: string, fields: WorkerFields): Promise<void>;
  touch(id: string, at: number): Promise<void>;
  /** workers heard from after `since`, by name */
  seenSince(since: number): Promise<WorkerRow[]>;
  /** how many of its jobs ended, and how many of those were lost */
  outcomes(workerId: string): Promise<{ done: number; lost: number }>;
  /** workers with an active lease not yet marked away that were last heard from before `before` */
  silentWithActiveLeases(before: number): Promise<{ id: string; lastSeen: number }[]>;
  /** records which replica holds the worker's socket now */
  setReplica(id: string, replica: string): Promise<void>;
  /** the replica let go of the worker's socket (unless another replica holds it since) */
  clearReplica(id: string, replica: string): Promise<void>;
  /** the replica holding the worker's socket, if it was heard from after `since` */
  replicaOf(id: string, since: number): Promise<string | undefined>;
}
