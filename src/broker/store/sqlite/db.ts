// The broker's database: one SQLite file in WAL mode. Migrations are numbered and applied in one
// transaction each; `user_version` records how far a file has come.
import Database from 'better-sqlite3';

export type Db = Database.Database;

export const MIGRATIONS: string[] = [
  `
  CREATE TABLE accounts (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, is_admin INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL
  );
  CREATE TABLE tokens (
    hash TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id),
    kind TEXT NOT NULL CHECK (kind IN ('user', 'worker')), label TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL
  );
  CREATE TABLE workers (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), name TEXT NOT NULL, hostname TEXT NOT NULL,
    version TEXT NOT NULL, gpus TEXT NOT NULL, price_per_hour REAL NOT NULL, last_seen INTEGER NOT NULL, created_at INTEGER NOT NULL
  );
  CREATE TABLE leases (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), worker_id TEXT NOT NULL REFERENCES workers(id),
    gpu_model TEXT NOT NULL, gpu_indices TEXT NOT NULL, count INTEGER NOT NULL, price_per_hour REAL NOT NULL,
    created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, ended_at INTEGER,
    status TEXT NOT NULL CHECK (status IN ('active', 'released', 'expired'))
  );
  CREATE INDEX leases_active ON leases(status, expires_at);
  CREATE TABLE jobs (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), lease_id TEXT NOT NULL REFERENCES leases(id),
    worker_id TEXT NOT NULL REFERENCES workers(id), entry TEXT NOT NULL, spec TEXT NOT NULL, status TEXT NOT NULL,
    created_at INTEGER NOT NULL, accepted_at INTEGER, started_at INTEGER, ended_at INTEGER, exit_code INTEGER, reason TEXT,
    cancel_reason TEXT, last_seq INTEGER NOT NULL DEFAULT 0, last_wseq INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX jobs_account ON jobs(account_id, created_at);
  CREATE INDEX jobs_worker ON jobs(worker_id, status);
  CREATE TABLE events (
    job_id TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (job_id, seq)
  ) WITHOUT ROWID;
  CREATE TABLE blobs (sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, created_at INTEGER NOT NULL) WITHOUT ROWID;
  CREATE TABLE blob_refs (sha256 TEXT NOT NULL, account_id TEXT NOT NULL, PRIMARY KEY (sha256, account_id)) WITHOUT ROWID;
  CREATE TABLE job_blobs (job_id TEXT NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (job_id, sha256)) WITHOUT ROWID;
  CREATE INDEX job_blobs_sha ON job_blobs(sha256);
  CREATE TABLE artifacts (
    job_id TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, PRIMARY KEY (job_id, path)
  ) WITHOUT ROWID;
  `,
  // 2: the safety review. A lease is not billed while its worker is away (away_since, away_ms);
  // a lease runs one job at a time (dispatched_at marks the one handed to the worker); a worker
  // may only report as an artifact what it uploaded for that job (job_uploads); what a job's log
  // holds is counted against a cap (event_bytes); a worker says what its Python has (stack); a
  // session is a job or a kernel (kind).
  `
  ALTER TABLE leases ADD COLUMN away_since INTEGER;
  ALTER TABLE leases ADD COLUMN away_ms INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE jobs ADD COLUMN dispatched_at INTEGER;
  ALTER TABLE jobs ADD COLUMN event_bytes INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE workers ADD COLUMN stack TEXT;
  ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'job';
  UPDATE jobs SET dispatched_at = created_at WHERE status IN ('queued', 'running');
  CREATE INDEX jobs_lease ON jobs(lease_id, status);
  CREATE TABLE job_uploads (job_id TEXT NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (job_id, sha256)) WITHOUT ROWID;
  `,
  // 3: a job's spec (its manifest can list many thousand files, megabytes of JSON) moves out of
  // the jobs row: every event appended updates that row, and SQLite rewrites a whole row on update.
  `
  CREATE TABLE job_specs (job_id TEXT PRIMARY KEY, spec TEXT NOT NULL);
  INSERT INTO job_specs (job_id, spec) SELECT id, spec FROM jobs;
  ALTER TABLE jobs DROP COLUMN spec;
  `,
  // 4 (broker HTTP surface and tokens): a token gets an id to list and revoke it by, the start of
  // its text to recognise it by (the secret stays hashed), an expiry, its last use and its
  // revocation; account names become unique regardless of case (of names that collide, the
  // oldest keeps its name and the others get their id appended, so an old file still opens).
  `
  ALTER TABLE tokens ADD COLUMN id TEXT;
  ALTER TABLE tokens ADD COLUMN prefix TEXT NOT NULL DEFAULT '';
  ALTER TABLE tokens ADD COLUMN expires_at INTEGER;
  ALTER TABLE tokens ADD COLUMN last_used_at INTEGER;
  ALTER TABLE tokens ADD COLUMN revoked_at INTEGER;
  UPDATE tokens SET id = 'tok_' || lower(hex(randomblob(10)));
  CREATE UNIQUE INDEX tokens_id ON tokens(id);
  CREATE INDEX tokens_account ON tokens(account_id, created_at);
  UPDATE accounts SET name = name || '-' || substr(id, 6)
    WHERE EXISTS (SELECT 1 FROM accounts o WHERE o.name = accounts.name COLLATE NOCASE
      AND (o.created_at < accounts.created_at OR (o.created_at = accounts.created_at AND o.id < accounts.id)));
  CREATE UNIQUE INDEX accounts_name_nocase ON accounts(name COLLATE NOCASE);
  `,
  // 5 (secrets): a renter's secrets, sealed with AES-256-GCM (src/broker/secrets.ts); secrets_meta
  // holds a value sealed with the key, so a broker started with another key says so at once.
  `
  CREATE TABLE secrets (
    account_id TEXT NOT NULL REFERENCES accounts(id), name TEXT NOT NULL, value BLOB NOT NULL, updated_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, name)
  ) WITHOUT ROWID;
  CREATE TABLE secrets_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
  `,
  // 6 (spend controls, store/spend-repository.ts): a lease's cost cap and idle release, the
  // warning given and why it ended; an account's monthly spend limit and the month it was warned.
  `
  CREATE TABLE lease_limits (
    lease_id TEXT PRIMARY KEY REFERENCES leases(id), max_cost REAL, idle_release_ms INTEGER,
    warning TEXT, end_reason TEXT
  ) WITHOUT ROWID;
  CREATE TABLE account_limits (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id), spend_limit REAL, warned_period INTEGER
  ) WITHOUT ROWID;
  CREATE INDEX leases_account ON leases(account_id, ended_at);
  `,
  // 7 (devices handed over only when free, services/leases.ts): a lease made while the last job
  // of an ended lease still held its devices waits for them, unbilled, from this time.
  `
  ALTER TABLE leases ADD COLUMN waiting_since INTEGER;
  `,
  // 8 (issue 14, finding 6): when a session's cancel was asked for, so the lease taken for it
  // stops billing a grace later whatever its worker says.
  `
  ALTER TABLE jobs ADD COLUMN cancel_requested_at INTEGER;
  `,
  // 9 (the ledger, store/ledger-repository.ts): books with their balance and overdraft, postings
  // (micro-credits, a unique idempotency key each), what the ledger holds of each lease, settings.
  `
  CREATE TABLE ledger_books (book TEXT PRIMARY KEY, balance INTEGER NOT NULL DEFAULT 0, overdraft INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
  CREATE TABLE ledger_postings (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, from_book TEXT NOT NULL, to_book TEXT NOT NULL,
    amount INTEGER NOT NULL CHECK (amount > 0), kind TEXT NOT NULL, lease_id TEXT, worker_id TEXT, memo TEXT, at INTEGER NOT NULL
  );
  CREATE INDEX ledger_postings_from ON ledger_postings(from_book, at);
  CREATE INDEX ledger_postings_to ON ledger_postings(to_book, at);
  CREATE INDEX ledger_postings_lease ON ledger_postings(lease_id);
  CREATE TABLE ledger_leases (
    lease_id TEXT PRIMARY KEY, renter_book TEXT NOT NULL, provider_book TEXT NOT NULL, worker_id TEXT NOT NULL,
    metered INTEGER NOT NULL DEFAULT 0, closed_at INTEGER
  ) WITHOUT ROWID;
  CREATE INDEX ledger_leases_open ON ledger_leases(closed_at);
  CREATE TABLE ledger_settings (name TEXT PRIMARY KEY, value REAL NOT NULL) WITHOUT ROWID;
  `,
];

export function openDb(file: string): Db {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  // NORMAL in WAL mode survives a killed process; only a power cut may lose the last commits.
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  cacheStatements(db);
  return db;
}

/**
 * The repositories prepare their SQL where they use it; better-sqlite3 compiles a statement at
 * every prepare() (it keeps no cache), which cost a 15 000-file upload about a second of the
 * broker's CPU in hasBlobRef/recordBlob alone. Each SQL text is compiled once here instead.
 * Safe because nothing iterates a statement lazily (.iterate()), the one use a shared statement
 * would make busy.
 */
function cacheStatements(db: Db): void {
  const compile = db.prepare.bind(db);
  const cache = new Map<string, ReturnType<typeof compile>>();
  db.prepare = ((sql: string) => {
    let st = cache.get(sql);
    if (!st) cache.set(sql, (st = compile(sql)));
    return st;
  }) as typeof db.prepare;
}

function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`database schema ${current} is newer than this broker understands (${MIGRATIONS.length}); upgrade hearth`);
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
