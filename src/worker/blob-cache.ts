// Workspace files arrive as content-addressed blobs. Each is downloaded once per worker into
// workDir/blobs/<2 hex>/<sha> (fan-out folders, like the broker's: one folder of 40 000 files is
// slow to list and to look up in), verified against its hash, and copied into each job.
//
// What is cached, its size and its last use live in memory (a Map in least-recently-used order),
// read from the disk once in the background at start. A job's materialise therefore costs one
// lookup per file, never a pass over the cache, and eviction runs after the job started, removing
// only what is over the budget: the time to a job's first line does not grow with the cache.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BrokerClient } from '../client/api';
import { downloadVerified } from '../client/download';
import { Sha256 } from '../shared/protocol';

export const DEFAULT_MAX_CACHE_BYTES = 20 * 1024 ** 3;

const HEX2 = /^[0-9a-f]{2}$/;
/** blobs up to this size are fetched many to a request (the broker's batch route) */
const BATCH_FILE_MAX = 64 * 1024;
const BATCH_COUNT = 1000;
const BATCH_BYTES = 4 * 1024 * 1024;

export class BlobCache {
  private readonly inflight = new Map<string, Promise<string>>();
  /** blobs a job is copying out right now: never evicted under it */
  private readonly pinned = new Map<string, number>();
  /** sha → size, in least-recently-used order (a use moves an entry to the end) */
  private readonly index = new Map<string, number>();
  private total = 0;
  /** the one-time read of what is on disk (and the move of a flat cache into fan-out folders) */
  private readonly loaded: Promise<void>;
  private evicting: Promise<{ removed: number; bytes: number }> | undefined;
  private evictAgain = false;

  constructor(
    readonly dir: string,
    private readonly client: BrokerClient,
    private readonly maxBytes = DEFAULT_MAX_CACHE_BYTES,
  ) {
    this.loaded = this.load().catch(() => undefined);
  }

  /** Keeps the blob from eviction until unpin; pair every pin with one unpin. */
  pin(sha: string): void {
    this.pinned.set(sha, (this.pinned.get(sha) ?? 0) + 1);
  }
  unpin(sha: string): void {
    const n = (this.pinned.get(sha) ?? 1) - 1;
    if (n <= 0) this.pinned.delete(sha);
    else this.pinned.set(sha, n);
  }

  pathOf(sha: string): string {
    return join(this.dir, sha.slice(0, 2), sha);
  }

  /** Starts an eviction in the background when the cache is over its size; never waits for it. */
  prune(): Promise<void> {
    if (this.total > this.maxBytes || !this.indexReady) void this.evict();
    return Promise.resolve();
  }

  /**
   * Evicts least recently used blobs until the cache holds at most maxBytes; resolves when done.
   * Jobs hold copies, so an evicted blob is only downloaded again.
   */
  evict(): Promise<{ removed: number; bytes: number }> {
    if (this.evicting) {
      this.evictAgain = true;
      return this.evicting;
    }
    this.evicting = (async () => {
      let removed = 0;
      do {
        this.evictAgain = false;
        await this.loaded;
        for (const sha of [...this.index.keys()]) {
          if (this.total <= this.maxBytes) break;
          if (this.pinned.has(sha) || this.inflight.has(sha)) continue;
          this.forget(sha);
          await unlink(this.pathOf(sha)).catch(() => undefined);
          removed++;
        }
      } while (this.evictAgain);
      return { removed, bytes: this.total };
    })().finally(() => (this.evicting = undefined));
    return this.evicting;
  }

  /** bytes the cache holds, as far as it knows */
  get bytes(): number {
    return this.total;
  }

  /** The path of the verified blob in the cache, downloading it first when needed. */
  ensure(sha: string, size: number, signal?: AbortSignal): Promise<string> {
    if (!Sha256.safeParse(sha).success) return Promise.reject(new Error(`not a sha256: ${JSON.stringify(sha)}`));
    if (this.index.get(sha) === size) {
      this.touch(sha, size);
      return Promise.resolve(this.pathOf(sha));
    }
    let p = this.inflight.get(sha);
    if (!p) {
      p = this.fetchOnce(sha, size, signal).finally(() => this.inflight.delete(sha));
      this.inflight.set(sha, p);
    }
    return p;
  }

  private indexReady = false;
  /** false once the broker said it has no batch route (presigned URLs, or an older broker) */
  private batches = true;

  /**
   * Fetches the small blobs among `files` that are not cached, many to a request: a workspace of
   * 15 000 small files is 15 requests rather than 15 000. Each is hashed before it is kept; what
   * this leaves out (big blobs, a failed batch) ensure() fetches one by one.
   */
  async prefetch(files: readonly { sha256: string; size: number }[], signal?: AbortSignal): Promise<void> {
    if (!this.batches) return;
    const want = new Map<string, number>();
    for (const f of files) {
      if (f.size > BATCH_FILE_MAX || want.has(f.sha256) || this.index.get(f.sha256) === f.size || this.inflight.has(f.sha256)) continue;
      if (!Sha256.safeParse(f.sha256).success) continue;
      if (!this.indexReady && (await stat(this.pathOf(f.sha256)).catch(() => undefined))?.size === f.size) continue;
      want.set(f.sha256, f.size);
    }
    const groups: string[][] = [];
    let bytes = 0;
    for (const [sha, size] of want) {
      const last = groups[groups.length - 1];
      if (!last || last.length >= BATCH_COUNT || bytes + size > BATCH_BYTES) {
        groups.push([sha]);
        bytes = size;
      } else {
        last.push(sha);
        bytes += size;
      }
    }
    await mkdir(join(this.dir, 'tmp'), { recursive: true });
    let next = 0;
    const run = async () => {
      while (next < groups.length && this.batches) {
        signal?.throwIfAborted();
        const group = groups[next++]!;
        let got;
        try {
          got = await this.client.blobBatch(group);
        } catch (err) {
          if ((err as { status?: number }).status === 409 || (err as { status?: number }).status === 404) {
            if ((err as { status?: number }).status === 409) this.batches = false;
            continue; // ensure() asks for each on its own and reports what is wrong
          }
          throw err;
        }
        for (const { sha256, data } of got) {
          if (want.get(sha256) !== data.length || createHash('sha256').update(data).digest('hex') !== sha256) continue;
          const tmp = join(this.dir, 'tmp', `${sha256}.${randomBytes(4).toString('hex')}`);
          await mkdir(join(this.dir, sha256.slice(0, 2)), { recursive: true });
          await writeFile(tmp, data);
          await rename(tmp, this.pathOf(sha256));
          this.add(sha256, data.length);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(2, groups.length) }, run));
    if (this.total > this.maxBytes) void this.evict();
  }

  private async load(): Promise<void> {
    const found: { sha: string; size: number; mtime: number }[] = [];
    const entries = await readdir(this.dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (e.isDirectory() && HEX2.test(e.name)) {
        for (const name of await readdir(join(this.dir, e.name)).catch(() => [] as string[])) {
          if (!name.startsWith(e.name) || !Sha256.safeParse(name).success) continue;
          const st = await stat(join(this.dir, e.name, name)).catch(() => undefined);
          if (st?.isFile()) found.push({ sha: name, size: st.size, mtime: st.mtimeMs });
        }
      } else if (e.isFile() && Sha256.safeParse(e.name).success) {
        // A cache from before the fan-out folders: move each blob to its folder once.
        const from = join(this.dir, e.name);
        const st = await stat(from).catch(() => undefined);
        if (!st) continue;
        await mkdir(join(this.dir, e.name.slice(0, 2)), { recursive: true });
        await rename(from, this.pathOf(e.name)).catch(() => undefined);
        found.push({ sha: e.name, size: st.size, mtime: st.mtimeMs });
      }
    }
    found.sort((a, b) => a.mtime - b.mtime);
    // Blobs fetched while this ran were used just now: they stay at the recent end.
    const recent = [...this.index];
    this.index.clear();
    this.total = 0;
    for (const f of found) this.add(f.sha, f.size);
    for (const [sha, size] of recent) this.touch(sha, size);
    this.indexReady = true;
  }

  private add(sha: string, size: number): void {
    const old = this.index.get(sha);
    if (old !== undefined) this.total -= old;
    this.index.delete(sha);
    this.index.set(sha, size);
    this.total += size;
  }

  private touch(sha: string, size: number): void {
    this.add(sha, size);
    // The order survives a restart through mtimes; nobody waits for this.
    const now = new Date();
    void utimes(this.pathOf(sha), now, now).catch(() => undefined);
  }

  private forget(sha: string): void {
    const size = this.index.get(sha);
    if (size === undefined) return;
    this.total -= size;
    this.index.delete(sha);
  }

  private async fetchOnce(sha: string, size: number, signal?: AbortSignal): Promise<string> {
    const dest = this.pathOf(sha);
    if (!this.indexReady) {
      // Until the index is read, one stat of the blob's own path answers.
      const st = await stat(dest).catch(() => undefined);
      // Only verified blobs are ever renamed into place, so a size match is enough here.
      if (st?.isFile() && st.size === size) {
        this.touch(sha, size);
        return dest;
      }
    }
    await mkdir(join(this.dir, 'tmp'), { recursive: true });
    await mkdir(join(this.dir, sha.slice(0, 2)), { recursive: true });
    // One partial file for all attempts: a retry asks only for the bytes still missing.
    const tmp = join(this.dir, 'tmp', `${sha}.${randomBytes(4).toString('hex')}`);
    try {
      await downloadVerified(this.client, sha, size, dest, { part: tmp, signal, attempts: 6 });
    } finally {
      await rm(tmp, { force: true });
    }
    this.add(sha, size);
    if (this.total > this.maxBytes) void this.evict();
    return dest;
  }
}
