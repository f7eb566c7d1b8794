// A broker database written by an earlier version opens in this one with nothing lost.
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBroker } from '../../src/broker/app';

describe('broker: database migrations', () => {
  it('moves a version-1 job spec into job_specs, keeps the job, and marks its open jobs as holding their lease', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hearth-migrate-'));
    try {
      // The schema of version 1, as 0.1.0 brokers wrote it (only the tables this test fills).
      const db = new Database(join(dir, 'broker.db'));
      db.exec(`
        CREATE TABLE accounts (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, is_admin INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);
        CREATE TABLE tokens (hash TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), kind TEXT NOT NULL CHECK (kind IN ('user', 'worker')), label TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL);
        CREATE TABLE workers (id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), name TEXT NOT NULL, hostname TEXT NOT NULL, version TEXT NOT NULL, gpus TEXT NOT NULL, price_per_hour REAL NOT NULL, last_seen INTEGER NOT NULL, created_at INTEGER NOT NULL);
        CREATE TABLE leases (id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), worker_id TEXT NOT NULL REFERENCES workers(id), gpu_model TEXT NOT NULL, gpu_indices TEXT NOT NULL, count INTEGER NOT NULL, price_per_hour REAL NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, ended_at INTEGER, status TEXT NOT NULL CHECK (status IN ('active', 'released', 'expired')));
        CREATE INDEX leases_active ON leases(status, expires_at);
        CREATE TABLE jobs (id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), lease_id TEXT NOT NULL REFERENCES leases(id), worker_id TEXT NOT NULL REFERENCES workers(id), entry TEXT NOT NULL, spec TEXT NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL, accepted_at INTEGER, started_at INTEGER, ended_at INTEGER, exit_code INTEGER, reason TEXT, cancel_reason TEXT, last_seq INTEGER NOT NULL DEFAULT 0, last_wseq INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX jobs_account ON jobs(account_id, created_at);
        CREATE INDEX jobs_worker ON jobs(worker_id, status);
        CREATE TABLE events (job_id TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (job_id, seq)) WITHOUT ROWID;
        CREATE TABLE blobs (sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, created_at INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE blob_refs (sha256 TEXT NOT NULL, account_id TEXT NOT NULL, PRIMARY KEY (sha256, account_id)) WITHOUT ROWID;
        CREATE TABLE job_blobs (job_id TEXT NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (job_id, sha256)) WITHOUT ROWID;
        CREATE INDEX job_blobs_sha ON job_blobs(sha256);
        CREATE TABLE artifacts (job_id TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, PRIMARY KEY (job_id, path)) WITHOUT ROWID;
        INSERT INTO accounts VALUES ('acct_aaaaaaaa', 'admin', 1, 1);
        INSERT INTO workers VALUES ('wrk_aaaaaaaa', 'acct_aaaaaaaa', 'w', 'h', '0.1.0', '[]', 1, 1, 1);
        INSERT INTO leases VALUES ('lease_aaaaaaaa', 'acct_aaaaaaaa', 'wrk_aaaaaaaa', 'GPU', '[0]', 1, 1, 1, 9999999999999, NULL, 'active');
      `);
      const spec = { entry: 'train.py', args: [], env: {}, outputs: ['outputs/**'], logdir: 'runs', manifest: { files: [] } };
      db.prepare("INSERT INTO jobs (id, account_id, lease_id, worker_id, entry, spec, status, created_at, last_seq) VALUES ('job_aaaaaaaa', 'acct_aaaaaaaa', 'lease_aaaaaaaa', 'wrk_aaaaaaaa', 'train.py', ?, 'running', 5, 3)").run(JSON.stringify(spec));
      db.pragma('user_version = 1');
      db.close();

      const b = await buildBroker({ dataDir: dir });
      try {
        // Fields added since come with their defaults: it was a job, not a kernel.
        assert.deepEqual(await b.broker.jobSpec('job_aaaaaaaa'), { ...spec, kind: 'job', idleMinutes: 60, releaseLease: false });
        const row = (await b.broker.events.job('job_aaaaaaaa'))!;
        assert.equal(row.last_seq, 3);
        assert.equal(row.dispatched_at, 5, 'a job open before the upgrade holds its lease');
        assert.equal('spec' in row, false);
        assert.equal(await b.broker.dispatchNext('lease_aaaaaaaa'), 'job_aaaaaaaa');
      } finally {
        await b.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
