// How much disk a folder takes, as du counts it (allocated blocks, so a sparse file counts for
// what it takes): for a job's disk limit, the size of a cached environment and of kept job
// folders. A walk that cannot see everything says so (a job's folder is the renter's to shape:
// nested past what a path can name, or a folder made unreadable), and its caller stops the job.
import { execFile } from 'node:child_process';
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** a disk walk looks at no more entries than this: past it the job is over its limit anyway */
export const MAX_DISK_ENTRIES = 500_000;

export interface DiskUsage {
  bytes: number;
  /** the walk did not see everything: `bytes` is a lower bound */
  truncated: boolean;
  /** why, when truncated: said in the job's reason */
  why?: string;
}

/** Allocated bytes under the roots, however deep; links not followed; stops after MAX_DISK_ENTRIES entries. */
export async function diskUsage(roots: string[]): Promise<DiskUsage> {
  let bytes = 0;
  let entries = 0;
  // Depth first with a stack of its own: no recursion, so no depth limit to hide anything below.
  const stack: string[] = [];
  for (const r of roots) {
    const st = await lstat(r).catch(() => null);
    if (!st) continue;
    bytes += st.blocks * 512;
    if (st.isDirectory()) stack.push(r);
  }
  while (stack.length) {
    const dir = stack.pop()!;
    let list;
    try {
      list = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue; // gone meanwhile
      // ENAMETOOLONG (nested past PATH_MAX), EACCES (a job's own chmod 000): what lies below is unseen.
      return { bytes, truncated: true, why: code === 'ENAMETOOLONG' ? 'folders nested too deep to measure' : `a folder the worker cannot read (${code ?? 'error'})` };
    }
    for (const e of list) {
      if (++entries > MAX_DISK_ENTRIES) return { bytes, truncated: true, why: `more than ${MAX_DISK_ENTRIES} files and folders` };
      const p = join(dir, e.name);
      try {
        bytes += (await lstat(p)).blocks * 512;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // gone meanwhile
        return { bytes, truncated: true, why: 'folders nested too deep to measure' };
      }
      if (e.isDirectory()) stack.push(p);
    }
  }
  return { bytes, truncated: false };
}

/**
 * Removes a folder tree, however deep: Node's rm names each entry by its whole path and gives up
 * (ENAMETOOLONG) past PATH_MAX, where coreutils' rm walks by descriptors.
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENAMETOOLONG') throw err;
    await new Promise<void>((res, rej) =>
      execFile('rm', ['-rf', '--one-file-system', '--', path], { timeout: 600_000 }, (e, _o, stderr) => (e ? rej(new Error(`rm -rf ${path}: ${String(stderr).trim() || e.message}`)) : res())),
    );
  }
}
