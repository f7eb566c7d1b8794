// The broker's storage seam. The services see only these repositories and this bus; which database
// sits behind them (SQLite in the data dir, or PostgreSQL shared by several replicas) is chosen once,
// in openStore. To add a repository: write its interface next to these (one file, async methods,
// rows from rows.ts), implement it in sqlite/ and postgres/ (one file each, with a migration in
// each backend's migrations.ts), and add it to Store and to both backends' index.ts.
import { join } from 'node:path';
import type { AccountsRepo } from './accounts-repo';
import type { BlobRefsRepo } from './blob-refs-repo';
import type { EventsRepo } from './events-repo';
import type { JobsRepo } from './jobs-repo';
import type { LeasesRepo } from './leases-repo';
import type { LedgerRepository } from './ledger-repository';
import type { SecretRepository } from './secrets-repo';
import type { SpendRepository } from './spend-repository';
import type { WorkersRepo } from './workers-repo';
import { openPostgresStore } from './postgres/index';
import { openSqliteStore } from './sqlite/index';

/** A request for the replica that holds a worker's socket. */
export interface WorkerCommand {
  workerId: string;
  kind: 'dispatch' | 'cancel' | 'request';
  jobId: string;
  /** cancel: the reason; request: the KernelRequest as JSON */
  data?: string;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** this process's name among the replicas sharing the database */
  readonly replicaId: string;
  readonly accounts: AccountsRepo;
  readonly workers: WorkersRepo;
  readonly leases: LeasesRepo;
  readonly jobs: JobsRepo;
  readonly events: EventsRepo;
  readonly blobRefs: BlobRefsRepo;
  readonly spend: SpendRepository;
  readonly secrets: SecretRepository;
  readonly ledger: LedgerRepository;
  /** called for every event committed to any job by any replica (this one included) */
  onEvent(listener: (jobId: string, seq: number) => void): void;
  /** sends a command to the replica `to` (see WorkerCommand) */
  command(to: string, cmd: WorkerCommand): Promise<void>;
  onCommand(listener: (cmd: WorkerCommand) => void): void;
  /**
   * Runs periodic work `name` here unless another replica ran it less than `everyMs` ago or runs it
   * now; true when it ran here. One process on SQLite: it always runs.
   */
  runExclusive(name: string, everyMs: number, fn: () => Promise<void>): Promise<boolean>;
  close(): Promise<void>;
}

/** Opens the store a broker is configured with: PostgreSQL for a postgres:// URL, else SQLite in the data dir. */
export async function openStore(opts: { dataDir: string; database?: string | undefined }): Promise<Store> {
  if (opts.database && /^postgres(ql)?:\/\//.test(opts.database)) {
    return openPostgresStore(opts.database);
  }
  if (opts.database) throw new Error(`unsupported --database ${JSON.stringify(opts.database.replace(/\/\/[^@/]*@/, '//…@'))}: give a postgres:// URL, or none for SQLite in the data dir`);
  return openSqliteStore(join(opts.dataDir, 'broker.db'));
}
