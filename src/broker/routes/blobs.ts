// Blob routes. A blob is visible to an account only once that account has uploaded its bytes
// (or a job of its produced it): HEAD answers 404 otherwise, so nobody learns what others store.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { Id, MissingBlobsBody, Sha256 } from '../../shared/protocol';
import type { Broker, Principal } from '../broker';
import { HttpError } from '../http-error';
import type { BlobStore } from '../store/blob-store';
import { parse, principal, requireAuth } from './auth';

const ShaParams = z.object({ sha: Sha256 });
// 200 000 hashes (MissingBlobsBody's most) as JSON; the client sends 5 000 a request.
const MISSING_BODY_LIMIT = 16 * 1024 * 1024;
const JobShaParams = z.object({ id: Id, sha: Sha256 });

export function blobRoutes(app: FastifyInstance, broker: Broker, blobs: BlobStore, maxBlobBytes: number): void {
  // Uploads arrive as raw streams; the store hashes them on the way to disk.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  const mayRead = async (p: Principal, sha: string) =>
    p.kind === 'worker' ? (await broker.workerMayRead(p.accountId, sha)) || (await broker.hasBlobRef(p.accountId, sha)) : broker.hasBlobRef(p.accountId, sha);

  app.post('/v1/blobs/missing', { onRequest: requireAuth(broker, 'user'), bodyLimit: MISSING_BODY_LIMIT }, async (req) => {
    const p = principal(req);
    const { hashes } = parse(MissingBlobsBody, req.body, 'missing-blobs query');
    const unref = new Set(await broker.missingBlobRefs(p.accountId, hashes));
    return { missing: hashes.filter((h) => unref.has(h) || !blobs.exists(h)) };
  });

  app.head('/v1/blobs/:sha', { onRequest: requireAuth(broker, 'any') }, async (req, reply) => {
    const { sha } = parse(ShaParams, req.params, 'blob hash');
    const size = await broker.blobSize(sha);
    if (size === undefined || !(await mayRead(principal(req), sha)) || !blobs.exists(sha)) return reply.code(404).send();
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
    const size = await broker.blobSize(sha);
    if (size === undefined || !(await mayRead(principal(req), sha)) || !blobs.exists(sha)) throw new HttpError(404, 'not_found', `no blob ${sha}`);
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

function sendRange(reply: FastifyReply, blobs: BlobStore, sha: string, size: number, header: string | undefined) {
  const range = parseRange(header, size);
  if (range === 'unsatisfiable') {
    // JSON, not the blob's octet-stream type: a 416 explains itself like every other error.
    return reply
      .code(416)
      .header('content-range', `bytes */${size}`)
      .send({ error: 'bad_range', message: `cannot serve range ${JSON.stringify(header)} of a ${size}-byte blob (one range of bytes, e.g. bytes=0-99)` });
  }
  reply.header('accept-ranges', 'bytes').header('content-type', 'application/octet-stream').header('etag', `"${sha}"`);
  if (range === 'full') return reply.header('content-length', size).send(size === 0 ? Buffer.alloc(0) : blobs.read(sha));
  return reply
    .code(206)
    .header('content-range', `bytes ${range.start}-${range.end}/${size}`)
    .header('content-length', range.end - range.start + 1)
    .send(blobs.read(sha, range.start, range.end));
}
