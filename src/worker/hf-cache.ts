// A Hugging Face cache per account on this worker: a session gets HF_HOME pointing at its
// account's folder (hf-cache/<cacheKey>, bound read-write into the sandbox), so a base model is
// downloaded once per worker rather than once per run. The broker names the account by an opaque
// key (JobAssignment.cacheKey); the sandbox shows a session its own account's folder and nothing
// else of hf-cache/, which lives in the worker's hidden work dir.
//
// The cache is capped: after each session ends (and at start) whole entries go, least recently
// used first, until the total fits. An entry is one repository folder under hub/ (models--org--name,
// datasets--…) or one other top-level folder of HF_HOME (datasets/, xet/…). "Used" is the newest
// atime or mtime of its files, as huggingface_hub's own scan_cache_dir reckons it. Folders of
// accounts with a session running are never evicted from under it.
import { chown, lstat, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { LogFn } from './job-run';
import type { JobUser } from './sandbox';

export const DEFAULT_HF_CACHE_MAX_BYTES = 50 * 1024 ** 3;

/** What stays however old: the token `huggingface-cli login` writes (tiny, and the account's own). */
const KEEP = new Set(['token', 'stored_tokens']);

interface Entry {
  key: string;
  path: string;
  bytes: number;
  usedAt: number;
}

export class HfCache {
  private readonly inUse = new Map<string, number>();
  /** evictions run one at a time */
  private evicting: Promise<void> = Promise.resolve();

  constructor(
    readonly root: string,
    readonly maxBytes: number,
    private readonly log: LogFn,
  ) {}

  /**
   * The account's folder, made when missing and owned by the job user (root worker), held until
   * `release`: no eviction touches it meanwhile.
   */
  async acquire(cacheKey: string, user: JobUser | null): Promise<{ dir: string; release: () => void }> {
    if (!/^[0-9a-f]{32}$/.test(cacheKey)) throw new Error('invalid cache key');
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    const dir = join(this.root, cacheKey);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (user) {
      const st = await stat(dir);
      if (st.uid !== user.uid || st.gid !== user.gid) await chown(dir, user.uid, user.gid);
    }
    this.inUse.set(cacheKey, (this.inUse.get(cacheKey) ?? 0) + 1);
    let released = false;
    return {
      dir,
      release: () => {
        if (released) return;
        released = true;
        const n = (this.inUse.get(cacheKey) ?? 1) - 1;
        if (n > 0) this.inUse.set(cacheKey, n);
        else this.inUse.delete(cacheKey);
        void this.evict();
      },
    };
  }

  /** Brings the cache under its cap; resolves when done. Never throws. */
  evict(): Promise<void> {
    this.evicting = this.evicting.then(() => this.evictNow()).catch((err: Error) => this.log('warn', 'could not trim the Hugging Face cache', { err: err.message }));
    return this.evicting;
  }

  private async evictNow(): Promise<void> {
    const entries: Entry[] = [];
    let keys: string[];
    try {
      keys = await readdir(this.root);
    } catch {
      return;
    }
    for (const key of keys) {
      const acct = join(this.root, key);
      for (const name of await safeReaddir(acct)) {
        if (KEEP.has(name)) continue;
        const path = join(acct, name);
        if (name === 'hub') {
          for (const repo of await safeReaddir(path)) {
            if (repo.startsWith('.')) continue;
            entries.push({ key, path: join(path, repo), ...(await measure(join(path, repo))) });
          }
        } else {
          entries.push({ key, path, ...(await measure(path)) });
        }
      }
    }
    let total = entries.reduce((n, e) => n + e.bytes, 0);
    if (total <= this.maxBytes) return;
    entries.sort((a, b) => a.usedAt - b.usedAt);
    for (const e of entries) {
      if (total <= this.maxBytes) break;
      if (this.inUse.has(e.key)) continue;
      await rm(e.path, { recursive: true, force: true });
      total -= e.bytes;
      this.log('info', 'evicted from the Hugging Face cache', { entry: e.path.slice(this.root.length + 1), bytes: e.bytes });
    }
    if (total > this.maxBytes) this.log('info', 'the Hugging Face cache is over its cap while sessions use it', { bytes: total, maxBytes: this.maxBytes });
  }
}

async function safeReaddir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

/** Bytes on disk (blocks: a sparse file counts what it takes) and last use of a file or folder. */
async function measure(path: string): Promise<{ bytes: number; usedAt: number }> {
  let bytes = 0;
  let usedAt = 0;
  let dirAt = 0;
  const stack = [path];
  while (stack.length) {
    const p = stack.pop()!;
    let st;
    try {
      st = await lstat(p);
    } catch {
      continue;
    }
    bytes += st.blocks * 512;
    // Files say when the entry was used (a folder's atime moves when this very scan lists it);
    // a folder's mtime counts only for an entry with no file.
    if (st.isDirectory()) {
      dirAt = Math.max(dirAt, st.mtimeMs);
      for (const n of await safeReaddir(p)) stack.push(join(p, n));
    } else usedAt = Math.max(usedAt, st.mtimeMs, st.atimeMs);
  }
  return { bytes, usedAt: usedAt || dirAt };
}
