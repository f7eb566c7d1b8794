// Turns a folder into a manifest of content hashes and uploads only the blobs the broker lacks.
// Ignore rules: .gitignore files at every level and a .hearthignore at the root, read with the
// `ignore` package (gitignore semantics); `.git/` and `.hearth/` are never uploaded.
import ignore, { type Ignore } from 'ignore';
import { createReadStream } from 'node:fs';
import { lstat, readFile, readdir, stat, mkdir, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Manifest, ManifestFile } from '../shared/protocol';
import type { BrokerClient } from './api';
import { sha256File, toRelPosix } from './files';

export interface ScannedWorkspace {
  manifest: Manifest;
  /** sha256 → an absolute path holding those bytes */
  paths: Map<string, string>;
  totalBytes: number;
}

const ALWAYS_IGNORED = ['.git/', '.hearth/'];
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
  // Each level's .gitignore applies to paths relative to its own folder.
  type Rules = { base: string; ig: Ignore };
  const walk = async (dir: string, rules: Rules[]): Promise<void> => {
    const here = [...rules];
    try {
      here.push({ base: dir, ig: ignore().add(await readFile(join(dir, '.gitignore'), 'utf8')) });
    } catch {
      /* no .gitignore here */
    }
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const abs = join(dir, e.name);
      const isDir = e.isDirectory();
      const ignored = here.some(({ base, ig }) => {
        const rel = toRelPosix(base, abs);
        return ig.ignores(isDir ? rel + '/' : rel);
      }) || rootRules.ignores(toRelPosix(root, abs) + (isDir ? '/' : ''));
      if (ignored) continue;
      if (isDir) {
        await walk(abs, here);
      } else if (e.isFile()) {
        if (files.length >= MAX_FILES) throw new Error(`more than ${MAX_FILES} files in ${root}; add a .hearthignore`);
        const st = await lstat(abs);
        const rel = toRelPosix(root, abs);
        const c = cache[rel];
        const sha256 = c && c.size === st.size && c.mtimeMs === st.mtimeMs ? c.sha256 : await sha256File(abs);
        nextCache[rel] = { size: st.size, mtimeMs: st.mtimeMs, sha256 };
        files.push({ path: rel, sha256, size: st.size, executable: (st.mode & 0o111) !== 0 });
        paths.set(sha256, abs);
        totalBytes += st.size;
      }
      // Symlinks and special files are not uploaded: a link may point outside the workspace.
    }
  };
  await walk(root, []);
  await saveHashCache(root, nextCache);
  return { manifest: { files }, paths, totalBytes };
}

export interface UploadProgress {
  phase: 'scan' | 'upload';
  doneBytes: number;
  totalBytes: number;
  files: number;
}

export async function uploadWorkspace(
  client: BrokerClient,
  root: string,
  opts: { onProgress?: (p: UploadProgress) => void; signal?: AbortSignal } = {},
): Promise<Manifest & { totalBytes: number; uploadedBytes: number; uploadedBlobs: number; uploadedFiles: number }> {
  opts.onProgress?.({ phase: 'scan', doneBytes: 0, totalBytes: 0, files: 0 });
  const ws = await scanWorkspace(root);
  opts.signal?.throwIfAborted();
  const missing = await client.missingBlobs([...ws.paths.keys()]);
  const sizes = new Map(ws.manifest.files.map((f) => [f.sha256, f.size]));
  const total = missing.reduce((n, h) => n + (sizes.get(h) ?? 0), 0);
  let done = 0;
  opts.onProgress?.({ phase: 'upload', doneBytes: 0, totalBytes: total, files: missing.length });
  for (const sha of missing) {
    opts.signal?.throwIfAborted();
    const abs = ws.paths.get(sha)!;
    const size = sizes.get(sha) ?? 0;
    await client.putBlob(sha, () => createReadStream(abs), size);
    done += size;
    opts.onProgress?.({ phase: 'upload', doneBytes: done, totalBytes: total, files: missing.length });
  }
  const sent = new Set(missing);
  const uploadedFiles = ws.manifest.files.filter((f) => sent.has(f.sha256)).length;
  return { files: ws.manifest.files, totalBytes: ws.totalBytes, uploadedBytes: total, uploadedBlobs: missing.length, uploadedFiles };
}
