// One `hearth up` per data dir: it holds `<data-dir>/up.pid` (its pid) while it runs, a second one
// refuses to start, and `hearth down` stops the one that holds it. A lock left by a process that
// is gone (killed with SIGKILL, a reboot) is stale and taken over.
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const lockPath = (dataDir: string): string => join(dataDir, 'up.pid');

/** The pid in the lock, if that process still runs `hearth up`. */
export function runningUp(dataDir: string): number | undefined {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(lockPath(dataDir), 'utf8').trim(), 10);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  // A reused pid: a live process that is not a `hearth up` does not hold the lock.
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (!argv.includes('up')) return undefined;
  } catch {
    /* no /proc here: trust the pid */
  }
  return pid;
}

export class UpLockedError extends Error {}

/** Takes the lock for this process, or throws saying which `hearth up` holds it. */
export function acquireUpLock(dataDir: string, dataDirFlag: string): () => void {
  const path = lockPath(dataDir);
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
      const holder = runningUp(dataDir);
      if (holder !== undefined) {
        throw new UpLockedError(`hearth up is already running on ${dataDir} (pid ${holder}); stop it with \`hearth${dataDirFlag} down\`, or pick another --data-dir`);
      }
      unlinkSync(path); // stale: its process is gone
    }
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    try {
      if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
    } catch {
      /* already gone */
    }
  };
  process.once('exit', release);
  return release;
}

/** `hearth down`: SIGTERM to the `hearth up` of this data dir, then wait for it to be gone. */
export async function stopUp(dataDir: string, graceMs = 70_000): Promise<{ pid?: number; killed?: boolean; stale?: boolean }> {
  const pid = runningUp(dataDir);
  if (pid === undefined) {
    let stale = false;
    try {
      unlinkSync(lockPath(dataDir));
      stale = true;
    } catch {
      /* no lock at all */
    }
    return { stale };
  }
  const alive = () => runningUp(dataDir) === pid;
  process.kill(pid, 'SIGTERM');
  const until = Date.now() + graceMs;
  while (alive() && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  if (!alive()) return { pid };
  process.kill(pid, 'SIGKILL');
  while (alive()) await new Promise((r) => setTimeout(r, 100));
  try {
    unlinkSync(lockPath(dataDir));
  } catch {
    /* gone already */
  }
  return { pid, killed: true };
}
