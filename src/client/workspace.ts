// Turns a folder into a manifest of content hashes and uploads only the blobs the broker lacks.
// Ignore rules: .gitignore files at every level and a .hearthignore at the root, read with the
// `ignore` package (gitignore semantics); `.git/` and `.hearth/` are never uploaded.
import ignore, { type Ignore } from 'ignore';
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readFileSync, readdirSync } from 'node:fs';
import { readFile, stat, mkdir, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { BLOB_BATCH_MAX, type Manifest, type ManifestFile } from '../shared/protocol';
import type { BrokerClient } from './api';
import { sha256File } from './files';

export interface ScannedWorkspace {
  manifest: Manifest;
  /** sha256 → an absolute path holding those bytes */
  paths: Map<string, string>;
  /** bytes of small files this scan read to hash them (so a first upload need not read them again) */
  contents: Map<string, Buffer>;
  totalBytes: number;
}

const ALWAYS_IGNORED = ['.git/', '.hearth/'];
/** Files up to this size travel packed together; a pack carries up to PACK_BYTES of them. */
const PACK_FILE_MAX = 64 * 1024;
/** bytes of small files a scan keeps in memory for the upload that follows it */
const KEEP_MAX = 64 * 1024 * 1024;
const MAX_FILES = 200_000;

// The cache lets a second run skip re-hashing files whose size and mtime did not change, so
// `hearth run` on an unchanged workspace costs a stat per file, not a read.
const HashCache = z.record(z.string(), z.object({ size: z.number(), mtimeMs: z.number(), sha256: z.string() }));
type HashCache = z.infer<typeof HashCache>;

async function loadHashCache(root: string): Promise<HashCache> {
  try {
    const r = HashCache.safeParse(JSON.parse(await readFile(join(root, '.hearth', 'hash-cache.json'), 'utf8')));
    return r.success ? r.data : {};
  } catch {
    return {};
  }
}

async function saveHashCache(root: string, cache: HashCache): Promise<void> {
  try {
    await mkdir(join(root, '.hearth'), { recursive: true });
    // .hearth/ holds this cache and pulled runs: never something to commit.
    await writeFile(join(root, '.hearth', '.gitignore'), '*\n', { flag: 'wx' }).catch(() => {});
    const tmp = join(root, '.hearth', `hash-cache.json.${process.pid}.tmp`);
    await writeFile(tmp, JSON.stringify(cache));
    await rename(tmp, join(root, '.hearth', 'hash-cache.json'));
  } catch {
    /* a read-only workspace still runs; it just hashes again next time */
  }
}

/**
 * Whether a scan of `root` would leave out `rel` (forward slashes): the same rules as the scan,
 * applied along the path only, so a run can say so before it uploads a folder without its entry.
 */
export function isIgnored(root: string, rel: string): boolean {
  const rootRules = ignore().add(ALWAYS_IGNORED);
  try {
    rootRules.add(readFileSync(join(root, '.hearthignore'), 'utf8'));
  } catch {
    /* no .hearthignore */
  }
  const parts = rel.split('/');
  const rules: { prefix: string; ig: Ignore }[] = [];
  let relDir = '';
  for (const [i, name] of parts.entries()) {
    try {
      rules.push({ prefix: relDir, ig: ignore().add(readFileSync(join(root, relDir, '.gitignore'), 'utf8')) });
    } catch {
      /* no .gitignore here */
    }
    const asked = relDir + name + (i < parts.length - 1 ? '/' : '');
    if (rootRules.ignores(asked) || rules.some(({ prefix, ig }) => ig.ignores(asked.slice(prefix.length)))) return true;
    relDir += name + '/';
  }
  return false;
}

export async function scanWorkspace(root: string): Promise<ScannedWorkspace> {
  const rootStat = await stat(root);
  if (!rootStat.isDirectory()) throw new Error(`${root} is not a folder`);
  const cache = await loadHashCache(root);
  const nextCache: HashCache = {};
  const files: ManifestFile[] = [];
  const paths = new Map<string, string>();
  let totalBytes = 0;

  const rootRules = ignore().add(ALWAYS_IGNORED);
  try {
    rootRules.add(await readFile(join(root, '.hearthignore'), 'utf8'));
  } catch {
    /* no .hearthignore */
  }
  // Each level's .gitignore applies to paths relative to its own folder (`prefix`: that folder
  // relative to root, with a trailing slash). Sync calls: one stat each through the thread pool
  // cost more than the stat itself, and a scan is all the caller waits for.
  type Rules = { prefix: string; ig: Ignore };
  let changed = false;
  const contents = new Map<string, Buffer>();
  let keptBytes = 0;
  const walk = (dir: string, relDir: string, rules: Rules[]): void => {
    const here = [...rules];
    try {
      here.push({ prefix: relDir, ig: ignore().add(readFileSync(join(dir, '.gitignore'), 'utf8')) });
    } catch {
      /* no .gitignore here */
    }
    const entries = readdirSync(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const abs = join(dir, e.name);
      const rel = relDir + e.name;
      const isDir = e.isDirectory();
      const asked = isDir ? rel + '/' : rel;
      if (rootRules.ignores(asked) || here.some(({ prefix, ig }) => ig.ignores(asked.slice(prefix.length)))) continue;
      if (isDir) {
        walk(abs, rel + '/', here);
      } else if (e.isFile()) {
        if (files.length >= MAX_FILES) throw new Error(`more than ${MAX_FILES} files in ${root}; add a .hearthignore`);
        const st = lstatSync(abs);
        if (!st.isFile()) continue;
        const c = cache[rel];
        let sha256: string;
        if (c && c.size === st.size && c.mtimeMs === st.mtimeMs) sha256 = c.sha256;
        else {
          changed = true;
          if (st.size <= 1 << 20) {
            const bytes = readFileSync(abs);
            sha256 = createHash('sha256').update(bytes).digest('hex');
            if (bytes.length <= PACK_FILE_MAX && keptBytes + bytes.length <= KEEP_MAX) {
              contents.set(sha256, bytes);
              keptBytes += bytes.length;
            }
          } else {
            sha256 = '';
            big.push({ rel, abs });
          }
        }
        nextCache[rel] = { size: st.size, mtimeMs: st.mtimeMs, sha256 };
        files.push({ path: rel, sha256, size: st.size, executable: (st.mode & 0o111) !== 0 });
        totalBytes += st.size;
      }
      // Symlinks and special files are not uploaded: a link may point outside the workspace.
    }
  };
  const big: { rel: string; abs: string }[] = [];
  walk(root, '', []);
  // Big files are hashed streaming, after the walk, so memory stays small.
  for (const { rel, abs } of big) nextCache[rel]!.sha256 = await sha256File(abs);
  for (const f of files) {
    if (!f.sha256) f.sha256 = nextCache[f.path]!.sha256;
    paths.set(f.sha256, join(root, ...f.path.split('/')));
  }
  if (changed || Object.keys(cache).length !== files.length) await saveHashCache(root, nextCache);
  return { manifest: { files }, paths, contents, totalBytes };
}

export interface UploadProgress {
  phase: 'scan' | 'upload';
  doneBytes: number;
  totalBytes: number;
  files: number;
}

/** What an upload did, for "uploaded N files (X MB), M already there". */
export interface UploadStats {
  /** files in the workspace, and their bytes */
  files: number;
  bytes: number;
  /** files whose bytes the broker lacked and that were sent now, and their bytes */
  uploadedFiles: number;
  uploadedBytes: number;
}


const PACK_BYTES = 4 * 1024 * 1024;
const PACK_COUNT = 1000;
/** requests in flight at once, to the broker or to the store */
const UPLOAD_CONCURRENCY = 4;
const DIRECT_CONCURRENCY = 16;
/** bytes one batch of presigned PUTs carries (at most BLOB_BATCH_MAX blobs) */
const DIRECT_BATCH_BYTES = 1024 ** 3;

type Task = { bytes: number; run: () => Promise<void> };

export async function uploadWorkspace(
  client: BrokerClient,
  root: string,
  opts: { onProgress?: (p: UploadProgress) => void; signal?: AbortSignal } = {},
): Promise<Manifest & { uploadedBytes: number; uploadedBlobs: number; stats: UploadStats }> {
  opts.onProgress?.({ phase: 'scan', doneBytes: 0, totalBytes: 0, files: 0 });
  const ws = await scanWorkspace(root);
  opts.signal?.throwIfAborted();
  const missing = await client.missingBlobs([...ws.paths.keys()]);
  const sizes = new Map(ws.manifest.files.map((f) => [f.sha256, f.size]));
  const blobs = missing.map((sha256) => ({ sha256, size: sizes.get(sha256) ?? 0, abs: ws.paths.get(sha256)!, data: ws.contents.get(sha256) }));
  const total = blobs.reduce((n, b) => n + b.size, 0);
  let done = 0;
  const progress = () => opts.onProgress?.({ phase: 'upload', doneBytes: done, totalBytes: total, files: missing.length });
  progress();
  await uploadBlobs(client, blobs, {
    signal: opts.signal,
    onBytes: (n) => {
      done += n;
      progress();
    },
  });
  const missingSet = new Set(missing);
  const sent = ws.manifest.files.filter((f) => missingSet.has(f.sha256));
  const stats: UploadStats = {
    files: ws.manifest.files.length,
    bytes: ws.totalBytes,
    uploadedFiles: sent.length,
    uploadedBytes: sent.reduce((n, f) => n + f.size, 0),
  };
  return { files: ws.manifest.files, uploadedBytes: total, uploadedBlobs: missing.length, stats };
}

/**
 * Uploads blobs the broker lacks, several requests at a time. To a store with presigned URLs
 * (S3) each goes straight there and the broker checks it afterwards; to a broker that keeps them
 * itself, small ones travel packed many to a request (15 000 requests of 130 bytes cost far
 * more than their bytes) and big ones one per request.
 */
export async function uploadBlobs(
  client: BrokerClient,
  blobs: { sha256: string; size: number; abs: string; data?: Buffer | undefined }[],
  opts: { signal?: AbortSignal; onBytes?: (n: number) => void } = {},
): Promise<void> {
  if (blobs.length === 0) return;
  const first = await client.blobUploads(blobs.slice(0, BLOB_BATCH_MAX));
  const tasks: Task[] = [];
  const viaBroker: typeof blobs = [];
  if (first.direct) {
    // Batch by batch, each presigned when it starts, so no URL waits out its few minutes.
    const batches: (typeof blobs)[] = [];
    let bytes = 0;
    for (const b of blobs) {
      const last = batches[batches.length - 1];
      if (!last || last.length >= BLOB_BATCH_MAX || bytes + b.size > DIRECT_BATCH_BYTES) {
        batches.push([b]);
        bytes = b.size;
      } else {
        last.push(b);
        bytes += b.size;
      }
    }
    for (const [i, batch] of batches.entries()) {
      const r = i === 0 && batch.length === Math.min(blobs.length, BLOB_BATCH_MAX) ? first : await client.blobUploads(batch);
      const urls = new Map(r.direct ? r.uploads.map((u) => [u.sha256, u]) : []);
      // Too big for one presigned PUT: the broker takes those and uploads them in parts.
      viaBroker.push(...batch.filter((b) => !urls.has(b.sha256)));
      await runLimited(directTasks(client, batch.filter((b) => urls.has(b.sha256)).map((b) => ({ ...b, upload: urls.get(b.sha256)! })), opts), DIRECT_CONCURRENCY, opts);
    }
  } else {
    viaBroker.push(...blobs);
  }
  let pack: typeof blobs = [];
  let packBytes = 0;
  const flush = () => {
    if (!pack.length) return;
    const items = pack;
    tasks.push({
      bytes: packBytes,
      run: async () => {
        const data: { sha256: string; data: Buffer }[] = [];
        for (const [i, b] of items.entries()) {
          // Sync reads of small files, yielding now and then: cheaper than the thread pool's trip.
          if (i % 64 === 63) await new Promise((r) => setImmediate(r));
          data.push({ sha256: b.sha256, data: b.data ?? readFileSync(b.abs) });
        }
        // A file edited since it was hashed would be refused by the broker for its whole pack.
        for (const [i, d] of data.entries()) if (d.data.length !== items[i]!.size) throw changed(items[i]!.abs);
        await client.packBlobs(data);
      },
    });
    pack = [];
    packBytes = 0;
  };
  for (const b of viaBroker) {
    if (b.size > PACK_FILE_MAX || first.direct) {
      tasks.push({ bytes: b.size, run: () => client.putBlob(b.sha256, () => createReadStream(b.abs), b.size) });
      continue;
    }
    if (pack.length >= PACK_COUNT || packBytes + b.size > PACK_BYTES) flush();
    pack.push(b);
    packBytes += b.size;
  }
  flush();
  await runLimited(tasks, UPLOAD_CONCURRENCY, opts);
}

function directTasks(
  client: BrokerClient,
  batch: { sha256: string; size: number; abs: string; data?: Buffer | undefined; upload: { sha256: string; url: string; headers: Record<string, string>; ticket: string } }[],
  opts: { signal?: AbortSignal; onBytes?: (n: number) => void },
): Task[] {
  if (!batch.length) return [];
  // The PUTs of a batch run in parallel; whichever ends last commits the batch.
  let left = batch.length;
  const commit = async () => {
    const c = await client.commitBlobs(batch.map((b) => ({ sha256: b.sha256, size: b.size, ticket: b.upload.ticket })));
    const refused = c.refused[0];
    if (refused) throw new Error(`the broker refused ${c.refused.length} upload(s), e.g. ${refused.sha256}: ${refused.message}`);
  };
  return batch.map((b) => ({
    bytes: b.size,
    run: async () => {
      opts.signal?.throwIfAborted();
      await client.putDirect(b.upload, b.data ?? (b.size <= PACK_FILE_MAX ? await readFile(b.abs) : () => createReadStream(b.abs)), b.size);
      if (--left === 0) await commit();
    },
  }));
}

/** Runs tasks with at most `limit` at once; the first failure stops the rest. */
async function runLimited(tasks: Task[], limit: number, opts: { signal?: AbortSignal; onBytes?: (n: number) => void }): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < tasks.length && !failed) {
      opts.signal?.throwIfAborted();
      const t = tasks[next++]!;
      try {
        await t.run();
      } catch (err) {
        failed = true;
        throw err;
      }
      opts.onBytes?.(t.bytes);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}

function changed(abs: string): Error {
  return new Error(`${abs} changed while it was being uploaded; run again`);
}
