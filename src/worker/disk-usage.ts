// How much disk a folder takes, as du counts it (allocated blocks, so a sparse file counts for
// what it takes): for a job's disk limit and the size of a cached environment.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** a disk walk looks at no more entries than this: past it the job is over its limit anyway */
export const MAX_DISK_ENTRIES = 500_000;

/** Allocated bytes under the roots, stopping after MAX_DISK_ENTRIES entries; links not followed. */
export async function diskUsage(roots: string[]): Promise<{ bytes: number; truncated: boolean }> {
  let bytes = 0;
  let entries = 0;
  const walk = async (dir: string, depth: number): Promise<boolean> => {
    let list;
    try {
      list = await readdir(dir, { withFileTypes: true });
    } catch {
      return true;
    }
    for (const e of list) {
      if (++entries > MAX_DISK_ENTRIES) return false;
      const p = join(dir, e.name);
      try {
        const st = await lstat(p);
        bytes += st.blocks * 512;
      } catch {
        continue; // gone meanwhile
      }
      if (e.isDirectory() && depth < 256 && !(await walk(p, depth + 1))) return false;
    }
    return true;
  };
  for (const r of roots) if (!(await walk(r, 0))) return { bytes, truncated: true };
  return { bytes, truncated: false };
}
