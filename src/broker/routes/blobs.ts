// Blob routes. A blob is visible to an account only once that account has uploaded its bytes
// (or a job of its produced it): HEAD answers 404 otherwise, so nobody learns what others store.
// Bytes come in three ways: one blob per PUT (streamed, hashed on the way), many small blobs per
// POST /v1/blobs/pack, or, with a store that has presigned URLs (S3), straight to the store:
// POST /v1/blobs/uploads hands out URLs, the client PUTs, POST /v1/blobs/commit has the broker
// check each object before it records the blob. A download from such a store is a 307 to a
// presigned GET, given only after the same ownership checks as the bytes themselves.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import {
  BlobBatchBody,
  BlobCommitBody,
  BlobPackBody,
  BlobUploadsBody,
  Id,
  MissingBlobsBody,
  PACK_BLOB_MAX,
  PACK_BODY_MAX,
  Sha256,
  type BlobUploadsReply,
} from '../../shared/protocol';
import type { Broker, Principal } from '../broker';
import { HttpError } from '../http-error';
import { hashMismatch, type BlobStore } from '../store/blob-store';
import { parse, principal, requireAuth } from './auth';

const ShaParams = z.object({ sha: Sha256 });
// 200 000 hashes (MissingBlobsBody's most) as JSON; the client sends 5 000 a request.
const MISSING_BODY_LIMIT = 16 * 1024 * 1024;
const JobShaParams = z.object({ id: Id, sha: Sha256 });
// Base64 of PACK_BODY_MAX bytes, with room for the hashes and the JSON around them.
const PACK_REQUEST_LIMIT = Math.ceil(PACK_BODY_MAX / 3) * 4 + 1024 * 1024;

/** Runs fn over items with at most `limit` at a time; results in the items' order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const run = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  return out;
}

export function blobRoutes(app: FastifyInstance, broker: Broker, blobs: BlobStore, maxBlobBytes: number): void {
  // Uploads arrive as raw streams; the store hashes them on the way to disk.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  const mayRead = async (p: Principal, sha: string): Promise<boolean> =>
    (p.kind === 'worker' && (await broker.workerMayRead(p.accountId, sha))) || (await broker.hasBlobRef(p.accountId, sha));
  const readable = async (p: Principal, sha: string): Promise<number | undefined> => {
    const size = await broker.blobSize(sha);
    if (size === undefined || !(await mayRead(p, sha)) || !(await blobs.exists(sha))) return undefined;
    return size;
  };

  app.post('/v1/blobs/missing', { onRequest: requireAuth(broker, 'user'), bodyLimit: MISSING_BODY_LIMIT }, async (req) => {
    const p = principal(req);
    const { hashes } = parse(MissingBlobsBody, req.body, 'missing-blobs query');
    // The references in one query (a few thousand hashes a request), then the store for those held.
    const unref = new Set(await broker.missingBlobRefs(p.accountId, hashes));
    const have = await mapLimit(hashes, 32, async (h) => !unref.has(h) && (await blobs.exists(h)));
    return { missing: hashes.filter((_, i) => !have[i]) };
  });

  app.head('/v1/blobs/:sha', { onRequest: requireAuth(broker, 'any') }, async (req, reply) => {
    const { sha } = parse(ShaParams, req.params, 'blob hash');
    const size = await readable(principal(req), sha);
    if (size === undefined) return reply.code(404).send();
    return reply.header('content-length', size).header('accept-ranges', 'bytes').code(200).send();
  });

  const body = (b: unknown): b is Readable => !!b && typeof (b as Readable).pipe === 'function';
  const put = async (sha: string, data: unknown, accountId: string) => {
    if (!body(data)) {
      throw new HttpError(415, 'bad_content_type', 'upload blobs with Content-Type: application/octet-stream');
    }
    const { size } = await blobs.put(sha, data, maxBlobBytes);
    await broker.recordBlob(sha, size, accountId);
    return { sha256: sha, size };
  };

  app.put('/v1/blobs/:sha', { onRequest: requireAuth(broker, 'user') }, async (req, reply) => {
    const { sha } = parse(ShaParams, req.params, 'blob hash');
    reply.code(201);
    return put(sha, req.body, principal(req).accountId);
  });

  // Many small files in one request: a workspace of 15 000 of them is a few dozen requests, not
  // 15 000. Every blob is hashed here before any is stored; one that does not match fails them all.
  app.post('/v1/blobs/pack', { onRequest: requireAuth(broker, 'user'), bodyLimit: PACK_REQUEST_LIMIT }, async (req) => {
    const p = principal(req);
    const { blobs: items } = parse(BlobPackBody, req.body, 'blob pack');
    let total = 0;
    const decoded = items.map(({ sha256, data }) => {
      const bytes = Buffer.from(data, 'base64');
      if (bytes.length > PACK_BLOB_MAX) throw new HttpError(413, 'too_large', `blob ${sha256} is over ${PACK_BLOB_MAX} bytes: upload it on its own`);
      total += bytes.length;
      const actual = createHash('sha256').update(bytes).digest('hex');
      if (actual !== sha256) throw hashMismatch(actual, sha256);
      return { sha256, bytes };
    });
    if (total > PACK_BODY_MAX) throw new HttpError(413, 'too_large', `a pack holds at most ${PACK_BODY_MAX} bytes`);
    for (const [i, { sha256, bytes }] of decoded.entries()) {
      // The folder store writes these synchronously: let other requests in every few blobs.
      if (i % 32 === 31) await new Promise((r) => setImmediate(r));
      await blobs.putVerified(sha256, bytes);
    }
    // Recorded once every blob of the pack is stored under its name.
    await broker.recordBlobs(decoded.map((d) => ({ sha256: d.sha256, size: d.bytes.length })), p.accountId);
    return { stored: decoded.length };
  });

  // The other way: a worker filling its cache asks for many small blobs at once. Only from a
  // store the broker reads itself; with presigned URLs the reader fetches each from the store.
  app.post('/v1/blobs/batch', { onRequest: requireAuth(broker, 'any'), bodyLimit: MISSING_BODY_LIMIT }, async (req) => {
    const p = principal(req);
    const { hashes } = parse(BlobBatchBody, req.body, 'blob batch');
    if (blobs.direct) throw new HttpError(409, 'use_direct', 'this broker hands out presigned URLs: GET each blob');
    let total = 0;
    const out: { sha256: string; data: string }[] = [];
    for (const sha256 of hashes) {
      const size = await readable(p, sha256);
      // The same 404 as GET /v1/blobs/:sha, for a blob that is not there and one not the reader's.
      if (size === undefined) throw new HttpError(404, 'not_found', `no blob ${sha256}`);
      if (size > PACK_BLOB_MAX) throw new HttpError(413, 'too_large', `blob ${sha256} is over ${PACK_BLOB_MAX} bytes: GET it on its own`);
      total += size;
      if (total > PACK_BODY_MAX) throw new HttpError(413, 'too_large', `a batch holds at most ${PACK_BODY_MAX} bytes`);
      out.push({ sha256, data: (await blobs.readSmall(sha256)).toString('base64') });
      if (out.length % 32 === 0) await new Promise((r) => setImmediate(r));
    }
    return { blobs: out };
  });

  /** The account the bytes will belong to, after checking who may upload for a job. */
  const uploader = async (p: Principal, jobId: string | undefined) => {
    if (jobId === undefined) {
      if (p.kind !== 'user') throw new HttpError(403, 'forbidden', 'a worker uploads only for a job it runs (jobId)');
      return { accountId: p.accountId, job: undefined };
    }
    if (p.kind !== 'worker') throw new HttpError(403, 'forbidden', 'only a worker uploads for a job');
    return { accountId: p.accountId, job: await broker.workerJob(p.accountId, jobId) };
  };

  app.post('/v1/blobs/uploads', { onRequest: requireAuth(broker, 'any') }, async (req): Promise<BlobUploadsReply> => {
    const p = principal(req);
    const q = parse(BlobUploadsBody, req.body, 'blob upload request');
    const { accountId } = await uploader(p, q.jobId);
    const direct = blobs.direct;
    if (!direct) return { direct: false };
    for (const b of q.blobs) if (b.size > maxBlobBytes) throw new HttpError(413, 'too_large', `blob ${b.sha256} is larger than the limit of ${maxBlobBytes} bytes`);
    // Bigger than one PUT may carry: those go through the broker, which uploads them in parts.
    const small = q.blobs.filter((b) => b.size <= direct.maxPutBytes);
    const uploads = await mapLimit(small, 16, async (b) => ({ sha256: b.sha256, ...(await direct.presignPut(accountId, b.sha256, b.size)) }));
    return { direct: true, expiresInSeconds: direct.expiresInSeconds, uploads };
  });

  app.post('/v1/blobs/commit', { onRequest: requireAuth(broker, 'any') }, async (req) => {
    const p = principal(req);
    const q = parse(BlobCommitBody, req.body, 'blob commit');
    const { accountId, job } = await uploader(p, q.jobId);
    const direct = blobs.direct;
    if (!direct) throw new HttpError(400, 'no_direct_uploads', 'this broker keeps blobs itself: upload them with PUT /v1/blobs/:sha');
    const refused: { sha256: string; error: string; message: string }[] = [];
    const committed: string[] = [];
    await mapLimit(q.blobs, 8, async (b) => {
      try {
        await direct.commit(accountId, b.sha256, b.size, b.ticket);
      } catch (err) {
        if (!(err instanceof HttpError)) throw err;
        refused.push({ sha256: b.sha256, error: err.code, message: err.message });
        return;
      }
      // Recorded only now: the object under the blob's name was checked against its hash.
      if (job) await broker.recordJobUpload(job, b.sha256, b.size);
      else await broker.recordBlob(b.sha256, b.size, accountId);
      committed.push(b.sha256);
    });
    return { committed, refused };
  });

  // A worker uploads a job's artifacts here; the blob then belongs to the job's account.
  app.put('/v1/jobs/:id/blobs/:sha', { onRequest: requireAuth(broker, 'worker') }, async (req, reply) => {
    const { id, sha } = parse(JobShaParams, req.params, 'artifact upload');
    const job = await broker.workerJob(principal(req).accountId, id);
    if (!body(req.body)) throw new HttpError(415, 'bad_content_type', 'upload blobs with Content-Type: application/octet-stream');
    const { size } = await blobs.put(sha, req.body, maxBlobBytes);
    // Recorded per job: only bytes uploaded for this job may become its artifacts.
    await broker.recordJobUpload(job, sha, size);
    reply.code(201);
    return { sha256: sha, size };
  });

  app.get('/v1/blobs/:sha', { onRequest: requireAuth(broker, 'any') }, async (req, reply) => {
    const { sha } = parse(ShaParams, req.params, 'blob hash');
    const size = await readable(principal(req), sha);
    if (size === undefined) throw new HttpError(404, 'not_found', `no blob ${sha}`);
    if (blobs.direct) {
      // Only someone allowed to read the blob gets a URL; it stops working after a few minutes.
      return reply.code(307).header('location', await blobs.direct.presignGet(sha)).header('cache-control', 'no-store').send();
    }
    return sendRange(reply, blobs, sha, size, req.headers.range);
  });
}

/**
 * The one byte range a Range header asks for (RFC 9110 §14): `full` when the header is absent or
 * names a unit other than bytes (which a server must ignore), `unsatisfiable` for anything else it
 * cannot serve as one range: bad syntax, several ranges, start past the end, an empty suffix.
 */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'full' | 'unsatisfiable' {
  if (header === undefined) return 'full';
  const unit = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)=/.exec(header);
  if (unit && unit[1]!.toLowerCase() !== 'bytes') return 'full';
  const m = /^\s*bytes=(\d*)-(\d*)\s*$/i.exec(header);
  if (!m || (!m[1] && !m[2])) return 'unsatisfiable';
  // Digits past 2^53 are still digits: a huge end means "to the end", a huge start is past it.
  if (!m[1]) {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
  if (start >= size || (m[2] && Number(m[2]) < start)) return 'unsatisfiable';
  return { start, end };
}

async function sendRange(reply: FastifyReply, blobs: BlobStore, sha: string, size: number, header: string | undefined) {
  const range = parseRange(header, size);
  if (range === 'unsatisfiable') {
    // JSON, not the blob's octet-stream type: a 416 explains itself like every other error.
    return reply
      .code(416)
      .header('content-range', `bytes */${size}`)
      .send({ error: 'bad_range', message: `cannot serve range ${JSON.stringify(header)} of a ${size}-byte blob (one range of bytes, e.g. bytes=0-99)` });
  }
  reply.header('accept-ranges', 'bytes').header('content-type', 'application/octet-stream').header('etag', `"${sha}"`);
  if (range === 'full') return reply.header('content-length', size).send(size === 0 ? Buffer.alloc(0) : await blobs.read(sha));
  return reply
    .code(206)
    .header('content-range', `bytes ${range.start}-${range.end}/${size}`)
    .header('content-length', range.end - range.start + 1)
    .send(await blobs.read(sha, range.start, range.end));
}
