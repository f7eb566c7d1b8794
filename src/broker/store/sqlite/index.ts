// The embedded store: one SQLite file (what `hearth up` uses). One process owns the file, so the
// event bus and the worker commands stay in memory and periodic work always runs here.
import { EventEmitter } from 'node:events';
import type { Store, WorkerCommand } from '../store';
import { SqliteAccounts } from './accounts';
import { SqliteBlobRefs } from './blob-refs';
import { openDb } from './db';
import { SqliteEvents } from './events';
import { SqliteJobs } from './jobs';
import { SqliteLeases } from './leases';
import { SqliteLedger } from './ledger';
import { SqliteSecrets } from './secrets';
import { SqliteSpend } from './spend';
import { SqliteWorkers } from './workers';

export function openSqliteStore(file: string): Store {
  const db = openDb(file);
  const bus = new EventEmitter();
  bus.setMaxListeners(0);
  const replicaId = 'local';
  return {
    kind: 'sqlite',
    replicaId,
    accounts: new SqliteAccounts(db),
    workers: new SqliteWorkers(db),
    leases: new SqliteLeases(db),
    jobs: new SqliteJobs(db),
    events: new SqliteEvents(db, (jobId, seq) => bus.emit('event', jobId, seq)),
    blobRefs: new SqliteBlobRefs(db),
    spend: new SqliteSpend(db),
    secrets: new SqliteSecrets(db),
    ledger: new SqliteLedger(db),
    onEvent: (l) => void bus.on('event', l),
    command: async (_to: string, cmd: WorkerCommand) => void bus.emit('command', cmd),
    onCommand: (l) => void bus.on('command', l),
    runExclusive: async (_name, _everyMs, fn) => {
      await fn();
      return true;
    },
    close: async () => {
      db.close();
    },
  };
}
