import type { Artifact } from '../../../shared/protocol';
import type { BlobRefsRepo } from '../blob-refs-repo';
import type { Db } from './db';

export class SqliteBlobRefs implements BlobRefsRepo {
  constructor(private readonly db: Db) {}

  async hasRef(sha: string, accountId: string): Promise<boolean> {
    return !!this.db.prepare('SELECT 1 FROM blob_refs WHERE sha256 = ? AND account_id = ?').get(sha, accountId);
  }

  async missingRefs(hashes: string[], accountId: string): Promise<string[]> {
    const owned = this.db.prepare('SELECT 1 FROM blob_refs WHERE sha256 = ? AND account_id = ?');
    return hashes.filter((h) => !owned.get(h, accountId));
  }

  async workerMayRead(accountId: string, sha: string): Promise<boolean> {
    return !!this.db
      .prepare('SELECT 1 FROM job_blobs jb JOIN jobs j ON j.id = jb.job_id JOIN workers w ON w.id = j.worker_id WHERE jb.sha256 = ? AND w.account_id = ? LIMIT 1')
      .get(sha, accountId);
  }

  private recordSync(sha: string, size: number, accountId: string, at: number): void {
    this.db.prepare('INSERT OR IGNORE INTO blobs (sha256, size, created_at) VALUES (?, ?, ?)').run(sha, size, at);
    this.db.prepare('INSERT OR IGNORE INTO blob_refs (sha256, account_id) VALUES (?, ?)').run(sha, accountId);
  }

  async record(sha: string, size: number, accountId: string, at: number): Promise<void> {
    this.db.transaction(() => this.recordSync(sha, size, accountId, at))();
  }

  async recordMany(blobs: readonly { sha256: string; size: number }[], accountId: string, at: number): Promise<void> {
    this.db.transaction(() => {
      for (const b of blobs) this.recordSync(b.sha256, b.size, accountId, at);
    })();
  }

  async size(sha: string): Promise<number | undefined> {
    return (this.db.prepare('SELECT size FROM blobs WHERE sha256 = ?').get(sha) as { size: number } | undefined)?.size;
  }

  async recordJobUpload(jobId: string, accountId: string, sha: string, size: number, at: number): Promise<void> {
    this.db.transaction(() => {
      this.recordSync(sha, size, accountId, at);
      this.db.prepare('INSERT OR IGNORE INTO job_uploads (job_id, sha256) VALUES (?, ?)').run(jobId, sha);
    })();
  }

  async uploadedSize(jobId: string, sha: string): Promise<number | undefined> {
    const r = this.db.prepare('SELECT b.size AS size FROM job_uploads u JOIN blobs b ON b.sha256 = u.sha256 WHERE u.job_id = ? AND u.sha256 = ?').get(jobId, sha) as
      | { size: number }
      | undefined;
    return r?.size;
  }

  async recordArtifact(jobId: string, accountId: string, a: Artifact): Promise<void> {
    this.db.transaction(() => {
      this.db.prepare('INSERT OR REPLACE INTO artifacts (job_id, path, sha256, size) VALUES (?, ?, ?, ?)').run(jobId, a.path, a.sha256, a.size);
      this.db.prepare('INSERT OR IGNORE INTO blob_refs (sha256, account_id) VALUES (?, ?)').run(a.sha256, accountId);
      this.db.prepare('INSERT OR IGNORE INTO job_blobs (job_id, sha256) VALUES (?, ?)').run(jobId, a.sha256);
    })();
  }

  async artifacts(jobId: string): Promise<Artifact[]> {
    return this.db.prepare('SELECT path, sha256, size FROM artifacts WHERE job_id = ? ORDER BY path').all(jobId) as Artifact[];
  }
}
