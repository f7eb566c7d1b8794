// Limits on what one job may take from the provider's machine: memory (its tmpfs /tmp included,
// which the kernel charges to it), processes, and disk. Memory and processes are enforced by a
// cgroup per job (v1 or v2, whichever controllers this host mounts), created under the worker's
// own cgroup so the provider's limits on the worker still hold over its jobs; the job joins it
// before it runs any code (a wrapper writes its own pid there, then execs the sandbox). Where the
// worker cannot create cgroups (not root, nothing delegated) rlimits stand in, more coarsely.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';

export interface JobLimits {
  memoryBytes: number;
  pids: number;
  diskBytes: number;
  tmpBytes: number;
}

export const DEFAULT_LIMITS: JobLimits = {
  memoryBytes: 16 * 2 ** 30,
  pids: 4096,
  diskBytes: 50 * 2 ** 30,
  tmpBytes: 1 * 2 ** 30,
};

/** disk the folders of finished jobs kept for the provider may take together (the oldest go first past it) */
export const DEFAULT_KEPT_JOBS_BYTES = 20 * 2 ** 30;

/** "2G", "512M", "1.5GiB", "1048576" → bytes (powers of 1024, as `free` and `df -h` show them). */
export const ByteSize = z
  .string()
  .trim()
  .regex(/^\d+(\.\d+)?\s*([kKmMgGtT]i?[bB]?|[bB])?$/, 'a size such as 512M, 8G or 1073741824')
  .transform((s) => {
    const m = /^(\d+(?:\.\d+)?)\s*([kKmMgGtT])?/.exec(s)!;
    const mult = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[(m[2] ?? '').toLowerCase() as 'k'] ?? 1;
    return Math.floor(Number(m[1]) * mult);
  })
  .refine((n) => n >= 1 << 20, 'at least 1M');

export const PidCount = z.coerce.number().int().min(16, 'at least 16 (python and its helpers need a few)').max(4_194_304);

/** 2147483648 → "2 GiB"; 268435456 → "256 MiB" (how reasons name a limit). */
export function formatBytes(n: number): string {
  for (const [unit, size] of [['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (n >= size) {
      const v = n / size;
      return `${Number.isInteger(v) ? v : v.toFixed(1)} ${unit}`;
    }
  }
  return `${n} B`;
}

export type LimitBackend =
  | { kind: 'cgroup-v1'; memory: string; pids: string }
  | { kind: 'cgroup-v2'; parent: string }
  | { kind: 'rlimit'; why: string };

interface Mount {
  point: string;
  fstype: string;
  root: string;
  options: string[];
}

function mounts(): Mount[] {
  const out: Mount[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const f = pre.split(' ');
    const g = post.split(' ');
    out.push({ point: unescapeMount(f[4]!), root: unescapeMount(f[3]!), fstype: g[0]!, options: (g[2] ?? '').split(',') });
  }
  return out;
}
const unescapeMount = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

/** The worker's own cgroup in each hierarchy: v1 by controller name, v2 under ''. */
function ownCgroups(): Map<string, string> {
  const own = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    for (const c of m[1]!.split(',')) own.set(c, m[2]!);
  }
  return own;
}

/** Where the worker's own cgroup of a hierarchy lies in this mount namespace. */
function ownDir(m: Mount, ownPath: string): string | null {
  // A mount may show only part of the hierarchy (a container's view): its root is a prefix.
  const root = m.root === '/' ? '' : m.root;
  if (root && !(ownPath === root || ownPath.startsWith(root + '/'))) return null;
  return join(m.point, ownPath.slice(root.length));
}

/**
 * Decides once, at the worker's start, how jobs are limited: by trying to create (and remove) the
 * worker's parent cgroup for jobs. Any failure means rlimits, with the reason for the log.
 */
export async function prepareLimits(): Promise<LimitBackend> {
  let ms: Mount[];
  let own: Map<string, string>;
  try {
    ms = mounts();
    own = ownCgroups();
  } catch (err) {
    return { kind: 'rlimit', why: `cannot read the cgroups of this process: ${(err as Error).message}` };
  }
  const v1 = (ctl: string) => {
    const m = ms.find((x) => x.fstype === 'cgroup' && x.options.includes(ctl));
    const p = own.get(ctl);
    return m && p !== undefined ? ownDir(m, p) : null;
  };
  const memV1 = v1('memory');
  const pidsV1 = v1('pids');
  const errors: string[] = [];
  if (memV1 && pidsV1) {
    const memory = join(memV1, 'hearth', WORKER_DIR);
    const pids = join(pidsV1, 'hearth', WORKER_DIR);
    try {
      for (const parent of [memory, pids]) {
        await sweep(dirname(parent));
        // The folders may exist already (made by a root worker before): only a child made and
        // removed here shows that this user may create job cgroups in them.
        await probe(parent);
      }
      return { kind: 'cgroup-v1', memory, pids };
    } catch (err) {
      errors.push(`cgroup v1: ${(err as Error).message}`);
    }
  }
  const v2m = ms.find((x) => x.fstype === 'cgroup2');
  const v2own = own.get('');
  const v2dir = v2m && v2own !== undefined ? ownDir(v2m, v2own) : null;
  if (v2dir) {
    try {
      const ctls = (await readFile(join(v2dir, 'cgroup.controllers'), 'utf8')).split(/\s+/);
      if (!ctls.includes('memory') || !ctls.includes('pids')) throw new Error(`the memory and pids controllers are not available in ${v2dir}`);
      // v2 forbids processes in a cgroup whose controllers are handed to children, so the jobs'
      // parent is a sibling tree below the worker's cgroup, enabled for memory and pids.
      const hearth = join(v2dir, 'hearth');
      const parent = join(hearth, WORKER_DIR);
      await mkdir(hearth, { recursive: true });
      await sweep(hearth);
      await writeFile(join(v2dir, 'cgroup.subtree_control'), '+memory +pids');
      await writeFile(join(hearth, 'cgroup.subtree_control'), '+memory +pids');
      await mkdir(parent, { recursive: true });
      await writeFile(join(parent, 'cgroup.subtree_control'), '+memory +pids');
      await probe(parent);
      return { kind: 'cgroup-v2', parent };
    } catch (err) {
      errors.push(`cgroup v2: ${(err as Error).message}`);
    }
  }
  return { kind: 'rlimit', why: errors.length ? errors.join('; ') : 'no memory and pids cgroup controllers are mounted' };
}

/**
 * Each worker process keeps its jobs' cgroups in a folder of its own, so that a worker starting
 * can remove what a crashed one left (empty cgroups, its processes gone) without touching the
 * cgroups of another worker running beside it.
 */
const WORKER_DIR = `worker-${process.pid}`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the cgroup folders of workers that are gone (a busy cgroup stays: rmdir refuses it). */
async function sweep(hearth: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(hearth);
  } catch {
    return;
  }
  for (const e of entries) {
    const m = /^worker-(\d+)$/.exec(e);
    if (!m || alive(Number(m[1]))) continue;
    const dir = join(hearth, e);
    for (const job of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (job.isDirectory()) await rmdir(join(dir, job.name)).catch(() => undefined);
    }
    await rmdir(dir).catch(() => undefined);
  }
}

async function probe(parent: string): Promise<void> {
  await mkdir(parent, { recursive: true });
  const child = join(parent, `probe-${process.pid}`);
  await mkdir(child);
  await rmdir(child);
}

/** One job's cgroup(s): created before it starts, asked why it ended, removed after. */
export class JobCgroup {
  private constructor(
    private readonly backend: Exclude<LimitBackend, { kind: 'rlimit' }>,
    readonly dirs: string[],
  ) {}

  static async create(backend: Exclude<LimitBackend, { kind: 'rlimit' }>, jobId: string, limits: JobLimits): Promise<JobCgroup> {
    if (backend.kind === 'cgroup-v1') {
      const mem = join(backend.memory, jobId);
      const pids = join(backend.pids, jobId);
      await mkdir(mem);
      await mkdir(pids);
      const cg = new JobCgroup(backend, [mem, pids]);
      await writeFile(join(mem, 'memory.limit_in_bytes'), String(limits.memoryBytes));
      // Where swap is accounted, the limit covers it too: a job must not page the host to death.
      if (existsSync(join(mem, 'memory.memsw.limit_in_bytes'))) {
        await writeFile(join(mem, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes)).catch(() => undefined);
      }
      await writeFile(join(pids, 'pids.max'), String(limits.pids));
      return cg;
    }
    const dir = join(backend.parent, jobId);
    await mkdir(dir);
    const cg = new JobCgroup(backend, [dir]);
    await writeFile(join(dir, 'memory.max'), String(limits.memoryBytes));
    await writeFile(join(dir, 'memory.swap.max'), '0').catch(() => undefined);
    await writeFile(join(dir, 'pids.max'), String(limits.pids));
    return cg;
  }

  /** The files the job's first process writes its pid to, before anything else. */
  get procsFiles(): string[] {
    return this.dirs.map((d) => join(d, 'cgroup.procs'));
  }

  /** Whether the kernel killed a process of the job for memory, and whether a fork hit the process limit. */
  async verdict(): Promise<{ oom: boolean; pidsHit: boolean }> {
    const read = (p: string) => readFile(p, 'utf8').catch(() => '');
    const count = (text: string, key: string) => Number(new RegExp(`^${key} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    if (this.backend.kind === 'cgroup-v1') {
      const [mem, pids] = this.dirs as [string, string];
      return { oom: count(await read(join(mem, 'memory.oom_control')), 'oom_kill') > 0, pidsHit: count(await read(join(pids, 'pids.events')), 'max') > 0 };
    }
    const [dir] = this.dirs as [string];
    return { oom: count(await read(join(dir, 'memory.events')), 'oom_kill') > 0, pidsHit: count(await read(join(dir, 'pids.events')), 'max') > 0 };
  }

  /** Removes the cgroups; a process still in one (it should be gone) is killed first. */
  async remove(): Promise<string | null> {
    const errors: string[] = [];
    for (const d of this.dirs) {
      for (let attempt = 0; ; attempt++) {
        try {
          await rmdir(d);
          break;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') break;
          if (code !== 'EBUSY' || attempt >= 50) {
            errors.push(`${d}: ${(err as Error).message}`);
            break;
          }
          // Still members (exiting, or escaped the job's group): kill them and wait for the kernel.
          const pids = (await readFile(join(d, 'cgroup.procs'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
          for (const p of pids) {
            try {
              process.kill(Number(p), 'SIGKILL');
            } catch {
              /* gone */
            }
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
    return errors.length ? errors.join('; ') : null;
  }
}

/**
 * The rlimit fallback: prlimit's arguments. RLIMIT_NPROC counts the user's processes, not the
 * job's, so it allows what the user already runs plus the job's share; RLIMIT_AS is left alone
 * on GPU hosts, where CUDA reserves far more address space than memory; RLIMIT_FSIZE bounds one
 * file to the disk limit.
 */
export async function rlimitArgs(limits: JobLimits, isGpuHost: boolean): Promise<string[]> {
  const uid = process.getuid?.() ?? 0;
  const running = await new Promise<number>((res) =>
    execFile('ps', ['-L', '-u', String(uid), '-o', 'lwp='], (err, out) => res(err ? 0 : String(out).split('\n').filter(Boolean).length)),
  );
  const args = [`--nproc=${running + limits.pids}`, `--fsize=${limits.diskBytes}`];
  if (!isGpuHost) args.push(`--as=${limits.memoryBytes}`);
  return args;
}
