// Where blob bytes live. Two implementations: a folder on the broker's disk (the default, below)
// and S3 (s3-blob-store.ts), which also hands clients presigned URLs so bytes skip the broker.
// Either way a blob under its name is always whole and true: bytes are hashed on the way in and
// only take the blob's name once the hash matches.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, createReadStream, createWriteStream, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HttpError } from '../http-error';

export interface UploadLimits {
  /** an upload that brings fewer than `minBytes` within any `stallMs` is cut off */
  stallMs: number;
  minBytes: number;
}

/** A URL a client or worker moves a blob's bytes through without the broker in between. */
export interface DirectUpload {
  url: string;
  /** headers the PUT must carry exactly (they are part of the signature) */
  headers: Record<string, string>;
  /** names this upload when it is committed */
  ticket: string;
}

/** Presigned transfers, for stores that have them (S3). */
export interface DirectTransfers {
  /** seconds a presigned URL stays valid */
  readonly expiresInSeconds: number;
  /** the most bytes one presigned PUT may carry; bigger blobs go through the broker */
  readonly maxPutBytes: number;
  presignPut(accountId: string, sha: string, size: number): Promise<DirectUpload>;
  presignGet(sha: string): Promise<string>;
  /**
   * Checks what a client PUT through presignPut and makes it blob `sha`, or throws 400 and
   * removes it. Only after this may the broker record the blob.
   */
  commit(accountId: string, sha: string, size: number, ticket: string): Promise<void>;
}

export interface BlobStore {
  readonly kind: 'folder' | 's3';
  exists(sha: string): Promise<boolean>;
  /** Stores a stream as blob `sha`, or throws 400 when its bytes hash to something else. */
  put(sha: string, body: Readable, maxBytes: number): Promise<{ size: number }>;
  /** Stores bytes already in memory whose hash the caller has checked (the pack route). */
  putVerified(sha: string, data: Buffer): Promise<void>;
  /** the bytes from start to end, both inclusive */
  read(sha: string, start?: number, end?: number): Promise<Readable>;
  /** a small blob's bytes whole (the batch route) */
  readSmall(sha: string): Promise<Buffer>;
  /** present when clients may move bytes straight to and from the store */
  readonly direct?: DirectTransfers;
}

/**
 * Hashes, counts and meters a stream on its way to `sink`: 413 past maxBytes, 408 when a window
 * of `limits.stallMs` brings fewer than `limits.minBytes` (a stalled sender holds a socket and a
 * temp file). Resolves with the sha256 and size; the caller compares the hash.
 */
export async function meteredCopy(
  body: Readable,
  sink: NodeJS.WritableStream,
  maxBytes: number,
  limits: UploadLimits,
): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  let windowBytes = 0;
  const stall = setInterval(() => {
    if (windowBytes < limits.minBytes) {
      body.destroy(new HttpError(408, 'upload_stalled', `upload stalled: fewer than ${limits.minBytes} bytes in ${limits.stallMs / 1000} s; nothing was stored`));
    }
    windowBytes = 0;
  }, limits.stallMs);
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      windowBytes += chunk.length;
      if (size > maxBytes) return cb(new HttpError(413, 'too_large', `blob larger than the limit of ${maxBytes} bytes`));
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(body, meter, sink);
    return { sha256: hash.digest('hex'), size };
  } finally {
    clearInterval(stall);
  }
}

export function hashMismatch(actual: string, sha: string): HttpError {
  return new HttpError(400, 'hash_mismatch', `the uploaded bytes hash to ${actual}, not ${sha}; nothing was stored`);
}

/** blobs/<2 hex>/<sha256> under the broker's data dir; only the broker's user may read it. */
export class FolderBlobStore implements BlobStore {
  readonly kind = 'folder';
  private readonly tmpDir: string;

  constructor(
    private readonly root: string,
    private readonly limits: UploadLimits = { stallMs: 30_000, minBytes: 16 * 1024 },
  ) {
    this.tmpDir = join(root, 'tmp');
    mkdirSync(root, { recursive: true, mode: 0o700 });
    chmodSync(root, 0o700);
    // Uploads cut short by a killed broker left their temp files here; no upload is running yet.
    rmSync(this.tmpDir, { recursive: true, force: true });
    mkdirSync(this.tmpDir, { mode: 0o700 });
  }

  pathOf(sha: string): string {
    return join(this.root, sha.slice(0, 2), sha);
  }

  async exists(sha: string): Promise<boolean> {
    // Sync: a missing-blobs query asks for thousands, and a stat through the thread pool costs
    // far more than the stat.
    try {
      return statSync(this.pathOf(sha)).isFile();
    } catch {
      return false;
    }
  }

  async put(sha: string, body: Readable, maxBytes: number): Promise<{ size: number }> {
    const tmp = this.tmpName(sha);
    try {
      const { sha256: actual } = await meteredCopy(body, createWriteStream(tmp, { highWaterMark: 1 << 20, mode: 0o600 }), maxBytes, this.limits);
      if (actual !== sha) throw hashMismatch(actual, sha);
      const dest = await this.place(tmp, sha);
      return { size: (await stat(dest)).size };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /**
   * Sync, for the pack route's small blobs: a write, a rename and no trip through the thread
   * pool, which costs more than a small file's syscalls. The route yields between a few of them.
   */
  async putVerified(sha: string, data: Buffer): Promise<void> {
    // No exists() first: packs carry blobs the broker said it lacks, and a rename over the
    // same bytes changes nothing.
    const tmp = this.tmpName(sha);
    try {
      writeFileSync(tmp, data, { mode: 0o600 });
      this.mkSub(sha);
      renameSync(tmp, this.pathOf(sha));
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
  }

  async read(sha: string, start?: number, end?: number): Promise<Readable> {
    return createReadStream(this.pathOf(sha), { start, end, highWaterMark: 1 << 20 });
  }

  private readonly tmpPrefix = randomBytes(6).toString('hex');
  private tmpSeq = 0;

  async readSmall(sha: string): Promise<Buffer> {
    // Sync, like putVerified: the batch route reads a thousand small files and yields between.
    return readFileSync(this.pathOf(sha));
  }

  private tmpName(sha: string): string {
    return join(this.tmpDir, `${sha}.${this.tmpPrefix}.${this.tmpSeq++}`);
  }

  private readonly made = new Set<string>();

  private mkSub(sha: string): void {
    const sub = sha.slice(0, 2);
    if (!this.made.has(sub)) {
      mkdirSync(join(this.root, sub), { recursive: true, mode: 0o700 });
      this.made.add(sub);
    }
  }

  private async place(tmp: string, sha: string): Promise<string> {
    const dest = this.pathOf(sha);
    this.mkSub(sha);
    await rename(tmp, dest);
    return dest;
  }
}
