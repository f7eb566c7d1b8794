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
const JobShaParams = z.object({ id: Id, sha: Sha256 });

export function blobRoutes(app: FastifyInstance, broker: Broker, blobs: BlobStore, maxBlobBytes: number): void {
  // Uploads arrive as raw streams; the store hashes them on the way to disk.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  const mayRead = (p: Principal, sha: string) =>
    p.kind === 'worker' ? broker.workerMayRead(p.accountId, sha) || broker.hasBlobRef(p.accountId, sha) : broker.hasBlobRef(p.accountId, sha);

  app.post('/v1/blobs/missing', { preHandler: requireAuth(broker, 'user'), bodyLimit: 32 * 1024 * 1024 }, async (req) => {
    const p = principal(req);
    const { hashes } = parse(MissingBlobsBody, req.body, 'missing-blobs query');
    return { missing: hashes.filter((h) => !broker.hasBlobRef(p.accountId, h) || !blobs.exists(h)) };
  });

  app.head('/v1/blobs/:sha', { preHandler: requireAuth(broker, 'any') }, async (req, reply) => {
    const { sha } = parse(ShaParams, req.params, 'blob hash');
    const size = broker.blobSize(sha);
    if (size === undefined || !mayRead(principal(req), sha) || !blobs.exists(sha)) return reply.code(404).send();
    return reply.header('content-length', size).header('accept-ranges', 'bytes').code(200).send();
  });

  const body = (b: unknown): b is Readable => !!b && typeof (b as Readable).pipe === 'function';
  const put = async (sha: string, data: unknown, accountId: string) => {
    if (!body(data)) {
      throw new HttpError(415, 'bad_content_type', 'upload blobs with Content-Type: application/octet-stream');
    }
    const { size } = await blobs.put(sha, data, maxBlobBytes);
    broker.recordBlob(sha, size, accountId);
    return { sha256: sha, size };
  };

  app.put('/v1/blobs/:sha', { preHandler: requireAuth(broker, 'user') }, async (req, reply) => {
    const { sha } = parse(ShaParams, req.params, 'blob hash');
    reply.code(201);
    return put(sha, req.body, principal(req).accountId);
  });

  // A worker uploads a job's artifacts here; the blob then belongs to the job's account.
  app.put('/v1/jobs/:id/blobs/:sha', { preHandler: requireAuth(broker, 'worker') }, async (req, reply) => {
    const { id, sha } = parse(JobShaParams, req.params, 'artifact upload');
    const job = broker.workerJob(principal(req).accountId, id);
    if (!body(req.body)) throw new HttpError(415, 'bad_content_type', 'upload blobs with Content-Type: application/octet-stream');
    const { size } = await blobs.put(sha, req.body, maxBlobBytes);
    // Recorded per job: only bytes uploaded for this job may become its artifacts.
    broker.recordJobUpload(job, sha, size);
    reply.code(201);
    return { sha256: sha, size };
  });

  app.get('/v1/blobs/:sha', { preHandler: requireAuth(broker, 'any') }, async (req, reply) => {
    const { sha } = parse(ShaParams, req.params, 'blob hash');
    const size = broker.blobSize(sha);
    if (size === undefined || !mayRead(principal(req), sha) || !blobs.exists(sha)) throw new HttpError(404, 'not_found', `no blob ${sha}`);
    return sendRange(reply, blobs, sha, size, req.headers.range);
  });
}

function sendRange(reply: FastifyReply, blobs: BlobStore, sha: string, size: number, range: string | undefined) {
  reply.header('accept-ranges', 'bytes').header('content-type', 'application/octet-stream').header('etag', `"${sha}"`);
  if (!range) return reply.header('content-length', size).send(blobs.read(sha));
  const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
  let start = m?.[1] ? Number(m[1]) : NaN;
  let end = m?.[2] ? Number(m[2]) : size - 1;
  if (m && !m[1] && m[2]) {
    // suffix form: the last N bytes
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  }
  if (!m || !Number.isSafeInteger(start) || start > end || start >= size) {
    if (size === 0 && m) return reply.header('content-length', 0).send(Buffer.alloc(0));
    return reply.code(416).header('content-range', `bytes */${size}`).send({ error: 'bad_range', message: `cannot serve ${range} of ${size} bytes` });
  }
  end = Math.min(end, size - 1);
  return reply
    .code(206)
    .header('content-range', `bytes ${start}-${end}/${size}`)
    .header('content-length', end - start + 1)
    .send(blobs.read(sha, start, end));
}
