// Blobs in an S3-compatible bucket. Clients and workers move the bytes themselves, through
// short-lived presigned URLs the broker hands out after its ownership checks; the broker only
// verifies and renames. Objects: <prefix>blobs/<2 hex>/<sha256> (only verified bytes, ever) and
// <prefix>staging/<account>/<sha256>.<ticket> (what a client PUT, until committed; a bucket
// lifecycle rule on staging/ cleans up uploads that were never committed).
//
// What guarantees that an object named blobs/…/<sha> holds bytes hashing to <sha>:
// - a presigned PUT signs the header `x-amz-checksum-sha256` (the sha, base64): S3 refuses a body
//   that does not hash to it, and records the checksum on the object;
// - commit() still checks before renaming: when the store reports that SHA-256 checksum (HEAD
//   with checksum mode) it must equal the name; a store that reports none (the stand-in s3rver,
//   some S3-compatible servers) has the object read back and hashed by the broker;
// - the rename is a server-side copy conditional on the ETag that was checked, so bytes PUT again
//   to the same staging key meanwhile are not what gets copied;
// - the broker's own writes (uploads streamed through it, the pack route) hash before they name.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { z } from 'zod';
import { HttpError } from '../http-error';
import { hashMismatch, meteredCopy, type BlobStore, type DirectTransfers, type DirectUpload, type UploadLimits } from './blob-store';

const GiB = 1024 ** 3;
/** S3's limit for one PUT and for one CopyObject */
const SINGLE_OP_MAX = 5 * GiB;
const COPY_PART = 512 * 1024 ** 2;

const Bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

/** `s3://bucket[/prefix]?endpoint=…&region=…&forcePathStyle=true`, checked once at start. */
export const S3Location = z.object({
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name: 3–63 lower-case letters, digits, dots and dashes'),
  prefix: z.string().regex(/^([A-Za-z0-9._-]+\/)*$/, 'a key prefix: folder names ending in /'),
  endpoint: z.string().url().optional(),
  region: z.string().min(1).default('us-east-1'),
  forcePathStyle: Bool.default('false'),
  /** seconds a presigned URL stays valid */
  expires: z.coerce.number().int().min(10).max(7 * 24 * 3600).default(300),
});
export type S3Location = z.infer<typeof S3Location>;

export function parseS3Url(spec: string): S3Location {
  let u: URL;
  try {
    u = new URL(spec);
  } catch {
    throw new Error(`--blobs: not a URL: ${JSON.stringify(spec)} (expected folder or s3://bucket?endpoint=…)`);
  }
  if (u.protocol !== 's3:') throw new Error(`--blobs: expected folder or s3://bucket?…, got ${u.protocol}`);
  // Keys in a URL would show in `ps` and in logs: they come from the environment only.
  if (u.username || u.password) throw new Error('--blobs: put no credentials in the URL; set HEARTH_S3_ACCESS_KEY_ID and HEARTH_S3_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)');
  const known = new Set(['endpoint', 'region', 'forcePathStyle', 'expires']);
  for (const k of u.searchParams.keys()) if (!known.has(k)) throw new Error(`--blobs: unknown setting ${JSON.stringify(k)} (known: ${[...known].join(', ')})`);
  const path = decodeURIComponent(u.pathname.replace(/^\/+/, ''));
  const r = S3Location.safeParse({
    bucket: u.hostname,
    prefix: path && !path.endsWith('/') ? path + '/' : path,
    ...Object.fromEntries(u.searchParams),
  });
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new Error(`--blobs: ${i.path.join('.') || 'url'}: ${i.message}`);
  }
  return r.data;
}

export function s3ClientFor(loc: S3Location, env: NodeJS.ProcessEnv = process.env): S3Client {
  // The version is pinned for Node 20; the SDK's notice is about releases after it.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const id = env.HEARTH_S3_ACCESS_KEY_ID;
  const secret = env.HEARTH_S3_SECRET_ACCESS_KEY;
  if (!!id !== !!secret) throw new Error('set both HEARTH_S3_ACCESS_KEY_ID and HEARTH_S3_SECRET_ACCESS_KEY, or neither');
  return new S3Client({
    region: loc.region,
    ...(loc.endpoint ? { endpoint: loc.endpoint } : {}),
    forcePathStyle: loc.forcePathStyle,
    // else the SDK's own chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profiles, instance roles
    ...(id && secret ? { credentials: { accessKeyId: id, secretAccessKey: secret } } : {}),
    // We say which checksum (SHA-256) where we want one; no CRC32 added to presigned URLs.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

const b64 = (sha: string) => Buffer.from(sha, 'hex').toString('base64');
const isNotFound = (err: unknown) => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404;
};
export const TICKET_RE = /^[0-9a-f]{24}$/;

export class S3BlobStore implements BlobStore, DirectTransfers {
  readonly kind = 's3';
  readonly direct: DirectTransfers = this;
  readonly maxPutBytes = SINGLE_OP_MAX;
  readonly expiresInSeconds: number;
  /** blobs known to be in the bucket (they are never deleted by us), so exists() asks once */
  private readonly known = new Set<string>();

  constructor(
    private readonly s3: S3Client,
    private readonly loc: S3Location,
    private readonly limits: UploadLimits = { stallMs: 30_000, minBytes: 16 * 1024 },
  ) {
    this.expiresInSeconds = loc.expires;
  }

  /** Opens the store and checks the bucket answers, so a wrong setting fails at start. */
  static async open(loc: S3Location, limits?: UploadLimits, env: NodeJS.ProcessEnv = process.env): Promise<S3BlobStore> {
    const s3 = s3ClientFor(loc, env);
    try {
      await s3.send(new HeadBucketCommand({ Bucket: loc.bucket }));
    } catch (err) {
      s3.destroy();
      const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
      throw new Error(`--blobs: bucket ${loc.bucket}${loc.endpoint ? ` at ${loc.endpoint}` : ''} is not usable: ${e.$metadata?.httpStatusCode ?? ''} ${e.name ?? ''} ${e.message ?? ''}`.trim());
    }
    return new S3BlobStore(s3, loc, limits);
  }

  close(): void {
    this.s3.destroy();
  }

  key(sha: string): string {
    return `${this.loc.prefix}blobs/${sha.slice(0, 2)}/${sha}`;
  }
  private stagingKey(accountId: string, sha: string, ticket: string): string {
    return `${this.loc.prefix}staging/${accountId}/${sha}.${ticket}`;
  }

  async exists(sha: string): Promise<boolean> {
    if (this.known.has(sha)) return true;
    try {
      await this.s3.send(new HeadObjectCommand({ Bucket: this.loc.bucket, Key: this.key(sha) }));
      this.remember(sha);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Bytes streamed through the broker (a big blob, an older client): multipart into staging, then named. */
  async put(sha: string, body: Readable, maxBytes: number): Promise<{ size: number }> {
    const key = this.stagingKey('broker', sha, randomBytes(12).toString('hex'));
    const pass = new PassThrough({ highWaterMark: 1 << 20 });
    const upload = new Upload({ client: this.s3, params: { Bucket: this.loc.bucket, Key: key, Body: pass }, partSize: 16 * 1024 ** 2, queueSize: 2 });
    const done = upload.done();
    try {
      let copied: { sha256: string; size: number };
      try {
        copied = await meteredCopy(body, pass, maxBytes, this.limits);
      } catch (err) {
        await upload.abort().catch(() => undefined);
        await done.catch(() => undefined);
        throw err;
      }
      const out = await done;
      if (copied.sha256 !== sha) throw hashMismatch(copied.sha256, sha);
      await this.rename(key, sha, copied.size, out.ETag);
      return { size: copied.size };
    } finally {
      await this.delete(key);
    }
  }

  async putVerified(sha: string, data: Buffer): Promise<void> {
    if (await this.exists(sha)) return;
    await this.s3.send(new PutObjectCommand({ Bucket: this.loc.bucket, Key: this.key(sha), Body: data, ContentLength: data.length, ChecksumSHA256: b64(sha) }));
    this.remember(sha);
  }

  async read(sha: string, start?: number, end?: number): Promise<Readable> {
    const range = start === undefined && end === undefined ? undefined : `bytes=${start ?? 0}-${end ?? ''}`;
    const r = await this.s3.send(new GetObjectCommand({ Bucket: this.loc.bucket, Key: this.key(sha), Range: range }));
    return r.Body as Readable;
  }

  async readSmall(sha: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of await this.read(sha)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  async presignPut(accountId: string, sha: string, size: number): Promise<DirectUpload> {
    const ticket = randomBytes(12).toString('hex');
    const checksum = b64(sha);
    const url = await getSignedUrl(
      this.s3,
      new PutObjectCommand({ Bucket: this.loc.bucket, Key: this.stagingKey(accountId, sha, ticket), ContentLength: size, ChecksumSHA256: checksum }),
      // A signed header, not a query parameter: the PUT must carry exactly this checksum.
      { expiresIn: this.expiresInSeconds, unhoistableHeaders: new Set(['x-amz-checksum-sha256']) },
    );
    return { url, headers: { 'x-amz-checksum-sha256': checksum }, ticket };
  }

  presignGet(sha: string): Promise<string> {
    return getSignedUrl(this.s3, new GetObjectCommand({ Bucket: this.loc.bucket, Key: this.key(sha) }), { expiresIn: this.expiresInSeconds });
  }

  async commit(accountId: string, sha: string, size: number, ticket: string): Promise<void> {
    if (!TICKET_RE.test(ticket)) throw new HttpError(400, 'bad_ticket', 'not an upload ticket');
    const key = this.stagingKey(accountId, sha, ticket);
    try {
      let head;
      try {
        head = await this.s3.send(new HeadObjectCommand({ Bucket: this.loc.bucket, Key: key, ChecksumMode: 'ENABLED' }));
      } catch (err) {
        if (isNotFound(err)) throw new HttpError(400, 'not_uploaded', `nothing was uploaded for ${sha} with this ticket (or it was already committed)`);
        throw err;
      }
      if (head.ContentLength !== size) {
        throw new HttpError(400, 'size_mismatch', `the uploaded object has ${head.ContentLength} bytes, not ${size}; nothing was stored`);
      }
      let etag = head.ETag;
      if (head.ChecksumSHA256 !== b64(sha)) {
        // The store keeps no SHA-256 of its own: read the object back and hash it here.
        const got = await this.s3.send(new GetObjectCommand({ Bucket: this.loc.bucket, Key: key }));
        const hash = createHash('sha256');
        for await (const chunk of got.Body as Readable) hash.update(chunk as Buffer);
        const actual = hash.digest('hex');
        if (actual !== sha) throw hashMismatch(actual, sha);
        etag = got.ETag;
      }
      await this.rename(key, sha, size, etag);
    } finally {
      await this.delete(key);
    }
  }

  /** Copies a checked staging object (only if it is still the version checked) to its blob name. */
  private async rename(from: string, sha: string, size: number, etag: string | undefined): Promise<void> {
    if (await this.exists(sha)) return;
    const source = `${this.loc.bucket}/${from.split('/').map(encodeURIComponent).join('/')}`;
    const Bucket = this.loc.bucket;
    const Key = this.key(sha);
    try {
      if (size <= SINGLE_OP_MAX) {
        await this.s3.send(new CopyObjectCommand({ Bucket, Key, CopySource: source, ...(etag ? { CopySourceIfMatch: etag } : {}) }));
      } else {
        // One CopyObject stops at 5 GiB: bigger objects are copied part by part, server-side.
        const { UploadId } = await this.s3.send(new CreateMultipartUploadCommand({ Bucket, Key }));
        try {
          const parts: { ETag: string; PartNumber: number }[] = [];
          for (let start = 0, n = 1; start < size; start += COPY_PART, n++) {
            const end = Math.min(size, start + COPY_PART) - 1;
            const r = await this.s3.send(
              new UploadPartCopyCommand({ Bucket, Key, UploadId, PartNumber: n, CopySource: source, CopySourceRange: `bytes=${start}-${end}`, ...(etag ? { CopySourceIfMatch: etag } : {}) }),
            );
            parts.push({ ETag: r.CopyPartResult!.ETag!, PartNumber: n });
          }
          await this.s3.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }));
        } catch (err) {
          await this.s3.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => undefined);
          throw err;
        }
      }
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 412) {
        throw new HttpError(409, 'changed', `the upload of ${sha} changed while it was being checked; nothing was stored`);
      }
      throw err;
    }
    this.remember(sha);
  }

  private async delete(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.loc.bucket, Key: key })).catch(() => undefined);
  }

  private remember(sha: string): void {
    if (this.known.size >= 1_000_000) this.known.clear();
    this.known.add(sha);
  }
}
