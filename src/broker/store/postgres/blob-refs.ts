import type { Artifact } from '../../../shared/protocol';
import type { BlobRefsRepo } from '../blob-refs-repo';
import { transaction, type Q, type Sql } from './sql';

export class PgBlobRefs implements BlobRefsRepo {
  constructor(private readonly sql: Sql) {}

  async hasRef(sha: string, accountId: string): Promise<boolean> {
    return (await this.sql`SELECT 1 FROM blob_refs WHERE sha256 = ${sha} AND account_id = ${accountId}`).length > 0;
  }

  async missingRefs(hashes: string[], accountId: string): Promise<string[]> {
    const held = new Set<string>();
    for (let i = 0; i < hashes.length; i += 10_000) {
      const page = hashes.slice(i, i + 10_000);
      for (const r of await this.sql<{ sha256: string }[]>`SELECT sha256 FROM blob_refs WHERE account_id = ${accountId} AND sha256 = ANY(${page}::text[])`) held.add(r.sha256);
    }
    return hashes.filter((h) => !held.has(h));
  }

  async workerMayRead(accountId: string, sha: string): Promise<boolean> {
    return (
      (await this.sql`SELECT 1 FROM job_blobs jb JOIN jobs j ON j.id = jb.job_id JOIN workers w ON w.id = j.worker_id WHERE jb.sha256 = ${sha} AND w.account_id = ${accountId} LIMIT 1`)
        .length > 0
    );
  }

  async record(sha: string, size: number, accountId: string, at: number): Promise<void> {
    await transaction(this.sql, (tx) => record(tx, sha, size, accountId, at));
  }

  async recordMany(blobs: readonly { sha256: string; size: number }[], accountId: string, at: number): Promise<void> {
    if (blobs.length === 0) return;
    // In hash order, so two packs sharing blobs take their index entries in the same order (no deadlock).
    const sorted = [...blobs].sort((a, b) => (a.sha256 < b.sha256 ? -1 : a.sha256 > b.sha256 ? 1 : 0));
    const shas = sorted.map((b) => b.sha256);
    const sizes = sorted.map((b) => b.size);
    // Two statements for the whole pack, whatever its size: the lists travel as arrays.
    await transaction(this.sql, async (tx) => {
      await tx`INSERT INTO blobs (sha256, size, created_at) SELECT s, z, ${at} FROM unnest(${shas}::text[], ${sizes}::bigint[]) AS t(s, z) ON CONFLICT DO NOTHING`;
      await tx`INSERT INTO blob_refs (sha256, account_id) SELECT s, ${accountId} FROM unnest(${shas}::text[]) AS t(s) ON CONFLICT DO NOTHING`;
    });
  }

  async size(sha: string): Promise<number | undefined> {
    const [r] = await this.sql<{ size: number }[]>`SELECT size FROM blobs WHERE sha256 = ${sha}`;
    return r?.size;
  }

  async recordJobUpload(jobId: string, accountId: string, sha: string, size: number, at: number): Promise<void> {
    await transaction(this.sql, async (tx) => {
      await record(tx, sha, size, accountId, at);
      await tx`INSERT INTO job_uploads (job_id, sha256) VALUES (${jobId}, ${sha}) ON CONFLICT DO NOTHING`;
    });
  }

  async uploadedSize(jobId: string, sha: string): Promise<number | undefined> {
    const [r] = await this.sql<{ size: number }[]>`SELECT b.size AS size FROM job_uploads u JOIN blobs b ON b.sha256 = u.sha256 WHERE u.job_id = ${jobId} AND u.sha256 = ${sha}`;
    return r?.size;
  }

  async recordArtifact(jobId: string, accountId: string, a: Artifact): Promise<void> {
    await transaction(this.sql, async (tx) => {
      await tx`INSERT INTO artifacts (job_id, path, sha256, size) VALUES (${jobId}, ${a.path}, ${a.sha256}, ${a.size})
        ON CONFLICT (job_id, path) DO UPDATE SET sha256 = EXCLUDED.sha256, size = EXCLUDED.size`;
      await tx`INSERT INTO blob_refs (sha256, account_id) VALUES (${a.sha256}, ${accountId}) ON CONFLICT DO NOTHING`;
      await tx`INSERT INTO job_blobs (job_id, sha256) VALUES (${jobId}, ${a.sha256}) ON CONFLICT DO NOTHING`;
    });
  }

  async artifacts(jobId: string): Promise<Artifact[]> {
    return [...(await this.sql<Artifact[]>`SELECT path, sha256, size FROM artifacts WHERE job_id = ${jobId} ORDER BY path`)];
  }
}

async function record(q: Q, sha: string, size: number, accountId: string, at: number): Promise<void> {
  await q`INSERT INTO blobs (sha256, size, created_at) VALUES (${sha}, ${size}, ${at}) ON CONFLICT DO NOTHING`;
  await q`INSERT INTO blob_refs (sha256, account_id) VALUES (${sha}, ${accountId}) ON CONFLICT DO NOTHING`;
}
