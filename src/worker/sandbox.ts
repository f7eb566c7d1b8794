// Jobs are code written by strangers, run on a provider's machine: under bubblewrap (bwrap) they
// see the system read-only, their own job folder read-write, a private size-capped /tmp, and an
// empty tmpfs in place of the worker's own state (its work dir with the blob cache, other jobs
// and worker.json, the data dir with the tokens and config.json) and of $HOME. The kernel's
// settings (/proc/sys) and the files container runtimes mask are read-only or masked, a seccomp
// filter (seccomp.ts) refuses the system calls no training job needs, and jobs never run as uid
// 0: a worker run as root hands them to an unprivileged user (--job-user, default nobody). Each
// session has a network namespace of its own (session-network.ts): no other session's ports, no
// host loopback, no provider LAN; the internet through user-mode NAT unless the provider said none.
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import * as os from 'node:os';
import { dirname, isAbsolute, resolve, sep } from 'node:path';
import { isInside } from './confine';
import { seccompFilter } from './seccomp';
import type { SessionNetwork } from './session-network';

export type SandboxMode = 'auto' | 'bwrap' | 'none';
export const SANDBOX_MODES: readonly SandboxMode[] = ['auto', 'bwrap', 'none'];

/** Who a root worker's jobs run as. */
export interface JobUser {
  uid: number;
  gid: number;
  /** for the log: the name given or found */
  name: string;
}

/** What the worker decided at start: how its jobs run. */
export type Sandbox =
  | {
      kind: 'bwrap';
      bwrap: string;
      hide: string[];
      /** set when the worker runs as root: the job drops to this user inside the sandbox */
      user?: JobUser | null;
      /** the compiled filter; null where this architecture has no table */
      seccomp?: Buffer | null;
      /** size of the job's /tmp; default 1 GiB */
      tmpBytes?: number;
      /** the sessions' network (session-network.ts); absent: the host's, shared */
      network?: SessionNetwork;
    }
  /** only for a worker that is not root: jobs run as its own user */
  | { kind: 'none' }
  /** `--sandbox bwrap` and bwrap does not work here: every job fails with `reason` */
  | { kind: 'unavailable'; reason: string };

export const DEFAULT_JOB_USER = 'nobody';

/**
 * "nobody", "hearth-job", "1234" or "1234:1234" → the user a root worker runs jobs as. Never
 * root: that is what this is for.
 */
export function resolveJobUser(spec: string, passwd: string = safeRead('/etc/passwd')): JobUser {
  const m = /^(\d+)(?::(\d+))?$/.exec(spec.trim());
  let user: JobUser | null = null;
  if (m) {
    const uid = Number(m[1]);
    const line = passwd.split('\n').find((l) => l.split(':')[2] === m[1]);
    user = { uid, gid: m[2] !== undefined ? Number(m[2]) : line ? Number(line.split(':')[3]) : uid, name: spec.trim() };
  } else {
    const line = passwd.split('\n').find((l) => l.split(':')[0] === spec.trim());
    if (!line) throw new Error(`--job-user: no user named ${JSON.stringify(spec)} in /etc/passwd (create one, e.g. useradd --system --no-create-home hearth-job, or give a uid)`);
    const f = line.split(':');
    user = { uid: Number(f[2]), gid: Number(f[3]), name: spec.trim() };
  }
  if (!Number.isInteger(user.uid) || !Number.isInteger(user.gid) || user.uid < 0 || user.gid < 0 || user.uid > 0xfffffffe || user.gid > 0xfffffffe) {
    throw new Error(`--job-user: ${JSON.stringify(spec)} is not a valid user`);
  }
  if (user.uid === 0 || user.gid === 0) throw new Error('--job-user: jobs must not run as root (uid or gid 0)');
  return user;
}

function safeRead(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

/**
 * The command that runs `command` as `user`: setpriv (util-linux) sets the ids, drops the
 * supplementary groups, and empties the inheritable and bounding capability sets, so nothing the
 * job executes can gain a capability back.
 */
export function dropTo(user: JobUser): string[] {
  return ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--'];
}

const NAMESPACES = ['--unshare-pid', '--unshare-ipc', '--unshare-uts'];
// Without capabilities, root in the sandbox cannot mount, unmount or override file permissions.
// A root worker's bwrap keeps just what setpriv needs to become the job user (it runs inside,
// after the mounts and the seccomp filter are in place); setpriv then drops those too.
const SESSION = ['--die-with-parent', '--new-session', '--cap-drop', 'ALL'];
const SETUID_CAPS = ['--cap-add', 'CAP_SETUID', '--cap-add', 'CAP_SETGID', '--cap-add', 'CAP_SETPCAP'];
/** bwrap reads the compiled seccomp program from this descriptor (spawn's stdio[3]). */
export const SECCOMP_FD = 3;

// What OCI runtimes make read-only or mask in /proc and /sys (runc's defaults): kernel settings,
// the interrupt and bus knobs, the magic SysRq key, kernel memory, the keyring, timers, the
// scheduler's debug view, firmware tables. Files get /dev/null over them, folders an empty tmpfs.
const READ_ONLY = ['/proc/sys', '/proc/sysrq-trigger', '/proc/irq', '/proc/bus', '/proc/fs'];
const MASKED = [
  '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/key-users', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/proc/kallsyms', '/proc/kpagecount', '/proc/kpageflags', '/proc/kpagecgroup',
  '/sys/firmware', '/sys/devices/virtual/powercap', '/sys/kernel/debug', '/sys/kernel/security',
];

/** bwrap arguments that lock /proc and /sys down; only paths this kernel has (bwrap fails on others). */
export function procMasks(exists: (p: string) => boolean = existsSync): string[] {
  const args: string[] = [];
  for (const p of READ_ONLY) if (exists(p)) args.push('--ro-bind', p, p);
  for (const p of MASKED) {
    if (!exists(p)) continue;
    let dir = false;
    try {
      dir = statSync(p).isDirectory();
    } catch {
      continue;
    }
    if (dir) args.push('--tmpfs', p, '--remount-ro', p);
    else args.push('--ro-bind', '/dev/null', p);
  }
  return args;
}

const DEFAULT_TMP_BYTES = 2 ** 30;

/**
 * The job's /tmp and /dev/shm (multiprocessing's semaphores, DataLoader workers' tensors): in
 * memory (charged to its memory limit), world-writable with the sticky bit, each capped.
 */
function tmpArgs(bytes: number | undefined): string[] {
  const size = String(bytes ?? DEFAULT_TMP_BYTES);
  return ['--perms', '1777', '--size', size, '--tmpfs', '/tmp', '--perms', '1777', '--size', size, '--tmpfs', '/dev/shm'];
}

function run(file: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    execFile(file, args, { timeout: timeoutMs, env, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const msg = String(stderr).trim().split('\n').pop();
        rej(new Error(msg && (err as NodeJS.ErrnoException).code !== 'ENOENT' ? `${err.message.split('\n')[0]}: ${msg}` : err.message.split('\n')[0]));
      } else res({ stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/**
 * Runs `bwrap args` with the seccomp program on SECCOMP_FD, as a job's sandbox is started; for the
 * probe at start. Rejects with bwrap's last line of stderr.
 */
function runSandboxed(bwrap: string, args: string[], filter: Buffer | null, timeoutMs: number): Promise<void> {
  return new Promise((res, rej) => {
    const child = spawn(bwrap, args, { stdio: ['ignore', 'ignore', 'pipe', filter ? 'pipe' : 'ignore'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
    if (filter) {
      const fd = child.stdio[SECCOMP_FD] as NodeJS.WritableStream;
      fd.on('error', () => undefined); // bwrap gone (or never started): its exit or spawn error says why
      fd.end(filter);
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      rej(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return res();
      const last = stderr.trim().split('\n').pop();
      rej(new Error(`${bwrap} exited with ${signal ?? `code ${code}`}${last ? `: ${last}` : ''}`));
    });
  });
}

/**
 * Decides once, at the worker's start, whether jobs run under bwrap: by running `true` under the
 * same namespaces, mounts, seccomp filter and user a job gets (a container may forbid them even
 * where bwrap is installed).
 */
export async function prepareSandbox(opts: {
  mode: SandboxMode;
  /** default 'bwrap' (found on PATH) */
  bwrap?: string;
  /** folders to hide besides $HOME (the work dir, the data dir) */
  hide: string[];
  /** who jobs run as when the worker is root (see resolveJobUser); default nobody */
  jobUser?: string;
  tmpBytes?: number;
  warn: (msg: string, fields?: Record<string, unknown>) => void;
}): Promise<Sandbox> {
  // Root's jobs never run as root; a wrong --job-user is the provider's to fix.
  const user = process.getuid?.() === 0 ? resolveJobUser(opts.jobUser ?? DEFAULT_JOB_USER) : null;
  // Without the sandbox a job as the job user could not even reach its folder (the data dir is
  // 0700), and as root it would own the machine: a root worker runs jobs sandboxed or not at all.
  const asRoot = (why: string) => `a worker run as root runs jobs only in the sandbox (as ${user!.name}), and ${why}; install bubblewrap, or run the worker as an ordinary user to run jobs unsandboxed`;
  if (opts.mode === 'none') return user ? { kind: 'unavailable', reason: asRoot('--sandbox none turns it off') } : { kind: 'none' };
  const bwrap = opts.bwrap ?? 'bwrap';
  const seccomp = seccompFilter();
  if (!seccomp) opts.warn(`no seccomp filter for ${process.arch}: jobs run without one`);
  try {
    const args = [...SESSION, ...(user ? SETUID_CAPS : []), ...NAMESPACES, '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', ...procMasks(), ...tmpArgs(opts.tmpBytes)];
    if (seccomp) args.push('--seccomp', String(SECCOMP_FD));
    await runSandboxed(bwrap, [...args, '--', ...(user ? dropTo(user) : []), 'true'], seccomp, 15_000);
  } catch (err) {
    const why = `bubblewrap (${bwrap}) does not work here: ${(err as Error).message}`;
    if (opts.mode === 'bwrap') return { kind: 'unavailable', reason: `the worker requires a sandbox (--sandbox bwrap) but ${why}` };
    if (user) return { kind: 'unavailable', reason: asRoot(why) };
    opts.warn(
      'jobs run UNSANDBOXED: they can read every file this user can (the worker\'s tokens included). ' +
        'Install bubblewrap (apt-get install bubblewrap) to sandbox them, or pass --sandbox none to silence this',
      { why },
    );
    return { kind: 'none' };
  }
  const home = process.env.HOME || os.homedir();
  return { kind: 'bwrap', bwrap, hide: [...opts.hide, home], user, seccomp, tmpBytes: opts.tmpBytes };
}

/** Where the interpreter really lives: a pyenv shim or a venv's python resolve to these. */
export interface PythonLocation {
  executable: string;
  /** folders it needs to read (its prefixes, the user site-packages) */
  needs: string[];
}

// A venv's python must run as itself (VENV/bin/python): started by its real path (the base
// interpreter) it no longer finds pyvenv.cfg, and the venv's site-packages drop out. Any other
// interpreter runs by its real path (a pyenv shim is a shell script). Site folders on sys.path
// (a .pth may add some, as Hearth's own environments do) are needed too.
const PROBE =
  'import json, os, site, sys\n' +
  'venv = sys.prefix != sys.base_prefix\n' +
  'exe = (sys.executable if venv else os.path.realpath(sys.executable)) if sys.executable else ""\n' +
  'sites = [p for p in sys.path if p and ("site-packages" in p or "dist-packages" in p) and os.path.isdir(p)]\n' +
  'print(json.dumps({"executable": exe, ' +
  '"needs": [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, site.getusersitepackages()] + sites}))';

/** Asks the configured interpreter (as the provider would run it, e.g. via a pyenv shim) where it lives. */
export async function locatePython(python: string, env: NodeJS.ProcessEnv): Promise<PythonLocation> {
  const { stdout } = await run(python, ['-c', PROBE], 30_000, env);
  const raw = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { executable?: unknown; needs?: unknown };
  const executable = typeof raw.executable === 'string' && isAbsolute(raw.executable) ? raw.executable : python;
  const needs = Array.isArray(raw.needs) ? raw.needs.filter((p): p is string => typeof p === 'string' && isAbsolute(p)) : [];
  return { executable, needs };
}

function real(p: string): string | null {
  try {
    return realpathSync(p);
  } catch {
    return null;
  }
}

/**
 * The topmost folder on the way to `target` that `user` may not search (a 0700 data dir, /root):
 * inside the sandbox it becomes an empty tmpfs, so the job can reach its own folder at its real
 * path. That hides nothing the job could otherwise see.
 */
export function untraversable(target: string, user: JobUser, stat: (p: string) => { mode: number; uid: number; gid: number } = statSync): string | null {
  const parts = resolve(target).split(sep).filter(Boolean);
  let p = '';
  for (const part of parts.slice(0, -1)) {
    p += sep + part;
    let st;
    try {
      st = stat(p);
    } catch {
      return null;
    }
    const bit = st.uid === user.uid ? 0o100 : st.gid === user.gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) return p;
  }
  return null;
}

/**
 * The bwrap command line for one job. `workspace` is bound read-write at its own path (so the
 * paths the worker hands the job, HEARTH_LOGDIR among them, mean the same inside); so is `home`
 * when given (the job's $HOME, kept apart from its outputs).
 */
export function bwrapArgs(o: {
  workspace: string;
  home?: string;
  hide: string[];
  python: PythonLocation;
  command: string[];
  /** root worker: the job runs as this user (setpriv inside the sandbox) */
  user?: JobUser | null;
  /** pass --seccomp SECCOMP_FD (the caller feeds the program on that descriptor) */
  seccomp?: boolean;
  tmpBytes?: number;
  /** where the host's device nodes are looked for; tests point it at a folder of stand-ins */
  devDir?: string;
  /** more folders the job may read and write, at their own paths (its account's Hugging Face cache) */
  binds?: string[];
  /** more folders or files to bring back, read-only, where a hidden folder or /tmp covers them */
  readOnly?: string[];
  /** files the job must not read (the provider's pip configuration): /dev/null over each */
  mask?: string[];
  /**
   * the session's network: 'none' gives it a namespace of its own with loopback only; 'entered'
   * means bwrap is started inside one made for it (session-network.ts), whose resolv.conf it
   * binds; 'host' (or absent) shares the host's
   */
  network?: { kind: 'none' } | { kind: 'entered'; resolvConf: { source: string; dest: string } | null } | { kind: 'host' };
}): string[] {
  const workspace = resolve(o.workspace);
  const home = o.home ? resolve(o.home) : undefined;
  const binds = (o.binds ?? []).map((b) => resolve(b));
  const dev = o.devDir ?? '/dev';
  const args = [...SESSION, ...(o.user ? SETUID_CAPS : []), ...NAMESPACES, ...(o.network?.kind === 'none' ? ['--unshare-net'] : []), '--ro-bind', '/', '/', '--dev', '/dev'];
  // GPU jobs must still reach their GPUs: the NVIDIA device nodes (nvidia0…, nvidiactl,
  // nvidia-uvm, nvidia-caps/) and DRI pass through as they are.
  for (const name of safeReaddir(dev).sort()) {
    if (name.startsWith('nvidia') || name === 'dri') args.push('--dev-bind', `${dev}/${name}`, `/dev/${name}`);
  }
  args.push('--proc', '/proc', ...procMasks(), ...tmpArgs(o.tmpBytes));
  const wanted = [...o.hide];
  if (o.user) {
    for (const t of [workspace, ...(home ? [home] : []), ...binds]) {
      const u = untraversable(t, o.user);
      if (u) wanted.push(u);
    }
  }
  // Parents before children; '/' itself is never hidden (HOME=/ for some service users).
  const hide = [...new Set(wanted.map(real).filter((p): p is string => p !== null && p !== '/'))].sort((a, b) => a.length - b.length);
  for (const h of hide) args.push('--tmpfs', h);
  // The interpreter may live under a hidden folder (pyenv under $HOME): bring back just its own
  // folders, read-only, unless one of them would uncover a hidden folder as a whole.
  const hidden = ['/tmp', ...hide];
  const back = new Set<string>();
  for (const n of [...o.python.needs, dirname(dirname(o.python.executable)), ...(o.readOnly ?? [])]) {
    const p = real(n);
    if (!p || p === '/') continue;
    if (!hidden.some((h) => isInside(h, p) && h !== p)) continue; // visible anyway
    if (hidden.some((h) => isInside(p, h))) continue; // would expose a hidden folder
    back.add(p);
  }
  // bwrap makes the folders leading to a bind inside a tmpfs 0700 and root's: the job user could
  // not reach its own folder or its interpreter. Made beforehand, searchable.
  const made = new Set<string>();
  for (const t of [...back, workspace, ...(home ? [home] : []), ...binds]) {
    const within = hidden.filter((h) => isInside(h, t) && h !== t).sort((a, b) => a.length - b.length).pop();
    if (!within) continue;
    for (let d = dirname(t); d !== within && isInside(within, d); d = dirname(d)) made.add(d);
  }
  for (const d of [...made].sort((a, b) => a.length - b.length)) args.push('--perms', '0755', '--dir', d);
  for (const p of [...back].sort((a, b) => a.length - b.length)) args.push('--ro-bind', p, p);
  if (home) args.push('--bind', home, home);
  for (const b of binds) args.push('--bind', b, b);
  args.push('--bind', workspace, workspace, '--chdir', workspace);
  for (const m of o.mask ?? []) {
    const p = real(m);
    if (p && !hidden.some((h) => isInside(h, p)) && !isInside(workspace, p)) args.push('--ro-bind', '/dev/null', p);
  }
  // The host's resolver may sit on its loopback or LAN, both unreachable: the session asks slirp's.
  if (o.network?.kind === 'entered' && o.network.resolvConf) args.push('--ro-bind', o.network.resolvConf.source, o.network.resolvConf.dest);
  if (o.seccomp) args.push('--seccomp', String(SECCOMP_FD));
  args.push('--', ...(o.user ? dropTo(o.user) : []), ...o.command);
  return args;
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * bwrap exits with 128+N when the job died of signal N (it cannot die of it itself). Mapped back
 * so that a job killed by SIGKILL still reports SIGKILL; a job that itself exits with such a code
 * (sys.exit(137)) reads the same, as it would under a shell.
 */
export function bwrapStatus(code: number | null, signal: NodeJS.Signals | null): [number | null, NodeJS.Signals | null] {
  if (signal || code === null || code <= 128) return [code, signal];
  const n = code - 128;
  const name = Object.entries(os.constants.signals).find(([, v]) => v === n)?.[0];
  return name ? [null, name as NodeJS.Signals] : [code, signal];
}

/**
 * The processes of the sandbox of bwrap process `bwrapPid`: its one child is the namespace's init,
 * which every process of the job descends from or was reparented to. Read from the kernel, never
 * from anything the job could write.
 */
export function sandboxProcesses(bwrapPid: number): { init: number; members: number[] } | null {
  let init: number;
  try {
    const kids = readFileSync(`/proc/${bwrapPid}/task/${bwrapPid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    if (kids.length !== 1) return null;
    init = Number(kids[0]);
  } catch {
    return null;
  }
  let ns: string;
  try {
    ns = readlinkSync(`/proc/${init}/ns/pid`);
    if (ns === readlinkSync('/proc/self/ns/pid')) return null; // not (yet) in its own namespace
  } catch {
    return null;
  }
  const members: number[] = [];
  for (const name of safeReaddir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readlinkSync(`/proc/${name}/ns/pid`) === ns) members.push(Number(name));
    } catch {
      /* gone meanwhile */
    }
  }
  return { init, members };
}
