// The one download of a blob to a file, shared by `hearth pull` and the worker's blob cache:
// the bytes go to a partial file, which a later attempt resumes with an HTTP Range request (from
// the broker, or from the store through the presigned URL the broker redirects to); sha256 and
// size are checked before the file takes its name, so a file under its real name is always whole.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat, writeFile } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BrokerClient } from './api';

export interface DownloadOptions {
  /** the partial file (default `<dest>.part`); kept between attempts and runs to resume from */
  part?: string;
  signal?: AbortSignal;
  /** bytes of the file so far, as they arrive */
  onBytes?: (got: number) => void;
  /** tries in all for network errors and 5xx (a 4xx will not change by asking again); default 1 */
  attempts?: number;
}

export class DownloadMismatchError extends Error {}

/** Downloads blob `sha` of `size` bytes to `dest`; resolves with the bytes taken from an earlier partial file. */
export async function downloadVerified(client: BrokerClient, sha: string, size: number, dest: string, opts: DownloadOptions = {}): Promise<{ resumedFrom: number }> {
  const part = opts.part ?? `${dest}.part`;
  const attempts = Math.max(1, opts.attempts ?? 1);
  let lastErr: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    opts.signal?.throwIfAborted();
    try {
      return await once(client, sha, size, dest, part, opts);
    } catch (err) {
      lastErr = err;
      if (opts.signal?.aborted || err instanceof DownloadMismatchError) throw err;
      const status = (err as { status?: number }).status;
      if (status !== undefined && status >= 400 && status < 500) throw err;
      if (attempt + 1 < attempts) await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
    }
  }
  throw lastErr instanceof Error ? lastErr : new Error(String(lastErr));
}

async function once(client: BrokerClient, sha: string, size: number, dest: string, part: string, opts: DownloadOptions): Promise<{ resumedFrom: number }> {
  let start = (await stat(part).catch(() => undefined))?.size ?? 0;
  if (start > size) {
    await rm(part, { force: true });
    start = 0;
  }
  let hash = createHash('sha256');
  if (start > 0) for await (const chunk of createReadStream(part, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  let got = start;
  opts.onBytes?.(got);
  if (size === 0) {
    await writeFile(part, '');
  } else if (start < size) {
    // Our own controller, tied to the caller's signal and untied when done: however many blobs
    // one job downloads under its signal, each leaves no listener behind.
    const ac = new AbortController();
    const onAbort = () => ac.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const res = await client.downloadBlob(sha, { start, signal: ac.signal });
      // A server that ignores Range sends the whole blob: start the file over rather than append it.
      if (start > 0 && res.status !== 206) {
        start = 0;
        got = 0;
        hash = createHash('sha256');
      }
      const tap = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          got += chunk.length;
          opts.onBytes?.(got);
          cb(null, chunk);
        },
      });
      await pipeline(res.body, tap, createWriteStream(part, { flags: start > 0 ? 'a' : 'w', highWaterMark: 1 << 20 }), { signal: ac.signal });
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }
  const digest = hash.digest('hex');
  if (digest !== sha || got !== size) {
    await rm(part, { force: true }); // wrong bytes are not worth resuming from
    throw new DownloadMismatchError(`downloaded bytes do not match (sha256 ${digest.slice(0, 12)}…, ${got} bytes; expected ${sha.slice(0, 12)}…, ${size} bytes)`);
  }
  await rename(part, dest);
  return { resumedFrom: start };
}
