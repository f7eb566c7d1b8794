// Content-addressed blob folder: blobs/<2 hex>/<sha256>. A blob is written to a temp file while
// its hash is computed and only renamed into place when the hash matches, so a blob under its
// name is always whole and true. Only the broker's user may read the folder (0700, files 0600).
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, createReadStream, createWriteStream, mkdirSync, rmSync, statSync } from 'node:fs';
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

export class BlobStore {
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

  exists(sha: string): boolean {
    try {
      return statSync(this.pathOf(sha)).isFile();
    } catch {
      return false;
    }
  }

  /** Stores a stream as blob `sha`, or throws 400 when its bytes hash to something else. */
  async put(sha: string, body: Readable, maxBytes: number): Promise<{ size: number }> {
    const tmp = join(this.tmpDir, `${sha}.${randomBytes(6).toString('hex')}`);
    const hash = createHash('sha256');
    let size = 0;
    // A slow or stalled sender holds a socket and a temp file: each window must bring minBytes.
    const { stallMs, minBytes } = this.limits;
    let windowBytes = 0;
    const stall = setInterval(() => {
      if (windowBytes < minBytes) {
        body.destroy(new HttpError(408, 'upload_stalled', `upload stalled: fewer than ${minBytes} bytes in ${stallMs / 1000} s; nothing was stored`));
      }
      windowBytes = 0;
    }, stallMs);
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
      await pipeline(body, meter, createWriteStream(tmp, { highWaterMark: 1 << 20, mode: 0o600 }));
      const actual = hash.digest('hex');
      if (actual !== sha) {
        throw new HttpError(400, 'hash_mismatch', `the uploaded bytes hash to ${actual}, not ${sha}; nothing was stored`);
      }
      const dest = this.pathOf(sha);
      mkdirSync(join(this.root, sha.slice(0, 2)), { recursive: true, mode: 0o700 });
      await rename(tmp, dest);
      return { size: (await stat(dest)).size };
    } finally {
      clearInterval(stall);
      await rm(tmp, { force: true });
    }
  }

  read(sha: string, start?: number, end?: number): Readable {
    return createReadStream(this.pathOf(sha), { start, end, highWaterMark: 1 << 20 });
  }
}
