// PostgreSQL's schema, numbered like SQLite's (sqlite/db.ts) but its own: a PostgreSQL database
// starts at today's shape. Times are epoch milliseconds (bigint), JSON is kept as text, so rows
// read the same as SQLite's. Replicas starting together migrate one at a time (an advisory lock).
export const PG_MIGRATIONS: string[] = [
  `
  CREATE TABLE accounts (
    id text PRIMARY KEY, name text NOT NULL, is_admin integer NOT NULL DEFAULT 0, created_at bigint NOT NULL
  );
  CREATE UNIQUE INDEX accounts_name_nocase ON accounts (lower(name));
  CREATE TABLE tokens (
    hash text PRIMARY KEY, id text NOT NULL UNIQUE, account_id text NOT NULL REFERENCES accounts(id),
    kind text NOT NULL CHECK (kind IN ('user', 'worker')), label text NOT NULL DEFAULT '', prefix text NOT NULL DEFAULT '',
    created_at bigint NOT NULL, expires_at bigint, last_used_at bigint, revoked_at bigint
  );
  CREATE INDEX tokens_account ON tokens (account_id, created_at);
  CREATE TABLE workers (
    id text PRIMARY KEY, account_id text NOT NULL REFERENCES accounts(id), name text NOT NULL, hostname text NOT NULL,
    version text NOT NULL, gpus text NOT NULL, price_per_hour double precision NOT NULL, last_seen bigint NOT NULL,
    created_at bigint NOT NULL, stack text,
    -- the replica that holds the worker's socket now (null: none)
    replica text
  );
  CREATE TABLE leases (
    id text PRIMARY KEY, account_id text NOT NULL REFERENCES accounts(id), worker_id text NOT NULL REFERENCES workers(id),
    gpu_model text NOT NULL, gpu_indices text NOT NULL, count integer NOT NULL, price_per_hour double precision NOT NULL,
    created_at bigint NOT NULL, expires_at bigint NOT NULL, ended_at bigint,
    status text NOT NULL CHECK (status IN ('active', 'released', 'expired')),
    away_since bigint, away_ms bigint NOT NULL DEFAULT 0
  );
  CREATE INDEX leases_active ON leases (status, expires_at);
  CREATE INDEX leases_worker ON leases (worker_id, status);
  CREATE TABLE jobs (
    id text PRIMARY KEY, account_id text NOT NULL REFERENCES accounts(id), lease_id text NOT NULL REFERENCES leases(id),
    worker_id text NOT NULL REFERENCES workers(id), entry text NOT NULL, status text NOT NULL,
    created_at bigint NOT NULL, accepted_at bigint, started_at bigint, ended_at bigint, exit_code integer, reason text,
    cancel_reason text, last_seq bigint NOT NULL DEFAULT 0, last_wseq bigint NOT NULL DEFAULT 0,
    dispatched_at bigint, event_bytes bigint NOT NULL DEFAULT 0, kind text NOT NULL DEFAULT 'job',
    -- submission order, for a lease's queue
    ord bigserial
  );
  CREATE INDEX jobs_account ON jobs (account_id, created_at);
  CREATE INDEX jobs_worker ON jobs (worker_id, status);
  CREATE INDEX jobs_lease ON jobs (lease_id, status);
  CREATE TABLE job_specs (job_id text PRIMARY KEY, spec text NOT NULL);
  CREATE TABLE events (job_id text NOT NULL, seq bigint NOT NULL, ts bigint NOT NULL, body text NOT NULL, PRIMARY KEY (job_id, seq));
  CREATE TABLE blobs (sha256 text PRIMARY KEY, size bigint NOT NULL, created_at bigint NOT NULL);
  CREATE TABLE blob_refs (sha256 text NOT NULL, account_id text NOT NULL, PRIMARY KEY (sha256, account_id));
  CREATE TABLE job_blobs (job_id text NOT NULL, sha256 text NOT NULL, PRIMARY KEY (job_id, sha256));
  CREATE INDEX job_blobs_sha ON job_blobs (sha256);
  CREATE TABLE job_uploads (job_id text NOT NULL, sha256 text NOT NULL, PRIMARY KEY (job_id, sha256));
  CREATE TABLE artifacts (job_id text NOT NULL, path text NOT NULL, sha256 text NOT NULL, size bigint NOT NULL, PRIMARY KEY (job_id, path));
  -- periodic work: when it last ran, and where (see runExclusive)
  CREATE TABLE ticks (name text PRIMARY KEY, at bigint NOT NULL, replica text NOT NULL, runs bigint NOT NULL DEFAULT 0);
  `,
  // 2 (secrets, spend controls; SQLite's 5 and 6): a renter's sealed secrets and the key check
  // value; a lease's cost cap, idle release, warning and end reason; an account's monthly limit.
  `
  CREATE TABLE secrets (
    account_id text NOT NULL REFERENCES accounts(id), name text NOT NULL, value bytea NOT NULL, updated_at bigint NOT NULL,
    PRIMARY KEY (account_id, name)
  );
  CREATE TABLE secrets_meta (key text PRIMARY KEY, value bytea NOT NULL);
  CREATE TABLE lease_limits (
    lease_id text PRIMARY KEY REFERENCES leases(id), max_cost double precision, idle_release_ms bigint,
    warning text, end_reason text
  );
  CREATE TABLE account_limits (
    account_id text PRIMARY KEY REFERENCES accounts(id), spend_limit double precision, warned_period bigint
  );
  CREATE INDEX leases_account ON leases (account_id, ended_at);
  `,
  // 3 (SQLite's 7): a lease that waits, unbilled, for devices the last job of an ended lease still holds.
  `
  ALTER TABLE leases ADD COLUMN waiting_since bigint;
  `,
  // 4 (SQLite's 8): when a session's cancel was asked for (the lease taken for it stops billing a grace later).
  `
  ALTER TABLE jobs ADD COLUMN cancel_requested_at bigint;
  `,
  // 5 (SQLite's 9): the ledger (store/ledger-repository.ts).
  `
  CREATE TABLE ledger_books (book text PRIMARY KEY, balance bigint NOT NULL DEFAULT 0, overdraft bigint NOT NULL DEFAULT 0);
  CREATE TABLE ledger_postings (
    id bigserial PRIMARY KEY, key text NOT NULL UNIQUE, from_book text NOT NULL, to_book text NOT NULL,
    amount bigint NOT NULL CHECK (amount > 0), kind text NOT NULL, lease_id text, worker_id text, memo text, at bigint NOT NULL
  );
  CREATE INDEX ledger_postings_from ON ledger_postings (from_book, at);
  CREATE INDEX ledger_postings_to ON ledger_postings (to_book, at);
  CREATE INDEX ledger_postings_lease ON ledger_postings (lease_id);
  CREATE TABLE ledger_leases (
    lease_id text PRIMARY KEY, renter_book text NOT NULL, provider_book text NOT NULL, worker_id text NOT NULL,
    metered bigint NOT NULL DEFAULT 0, closed_at bigint
  );
  CREATE INDEX ledger_leases_open ON ledger_leases (lease_id) WHERE closed_at IS NULL;
  CREATE TABLE ledger_settings (name text PRIMARY KEY, value double precision NOT NULL);
  `,
];
