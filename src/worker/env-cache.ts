// The packages a session asks for: its requirements (requirements.txt, or pyproject.toml's
// [project] dependencies) are installed by pip into a virtual environment on the provider's own
// interpreter, which sees the provider's site-packages (so PyTorch and CUDA stay the provider's,
// not downloaded again). Environments are cached under the worker's work dir, keyed by the
// requirements and the interpreter, read-only to the sessions that use them, built once however
// many sessions ask at the same time, and evicted least recently used past a size the provider
// sets. pip runs in the sandbox, under the limits and with the environment a job gets (an sdist's
// setup.py is the renter's code), plus the provider's pip configuration, which never reaches a job.
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { constants, existsSync, statSync } from 'node:fs';
import { lstat, lutimes, mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import { basename, isAbsolute, join } from 'node:path';
import { z } from 'zod';
import { confinedCommand, chownTree, type Confinement } from './confined';
import { confinedPathNoSymlinks } from './confine';
import { diskUsage } from './disk-usage';
import { inheritedEnv, jobEnv } from './job-env';
import type { LogFn } from './job-run';
import { formatBytes } from './limits';
import { LogBatcher } from './log-batcher';
import { bwrapStatus, locatePython, SECCOMP_FD, type PythonLocation } from './sandbox';

export const REQUIREMENTS_TXT = 'requirements.txt';
export const PYPROJECT_TOML = 'pyproject.toml';
/** the environments' folder under the work dir */
export const ENVS_DIR = 'envs';
export const DEFAULT_ENV_CACHE_BYTES = 20 * 2 ** 30;
const MAX_REQUIREMENTS_BYTES = 1 << 20;
/**
 * `<envs>/<key><READY>`, written last: an environment without it is a build that did not finish.
 * Beside the environment's folder, not in it: the install (the renter's code) writes that folder
 * and could plant a link there for the worker to write or read through.
 */
const READY = '.ready';
/** pip reads the requirements from here (inside the environment, so the key covers what it reads) */
const REQ_COPY = 'hearth-requirements.txt';
/** bumped when an environment's layout changes, so old ones are not reused */
const LAYOUT = 'hearth-env-2';

/** What a session asks to have installed. */
export interface Requirements {
  /** the file it came from, relative to the workspace (named in events and reasons) */
  source: string;
  /** pip requirements, one per line */
  text: string;
}

/**
 * The session's requirements: the file it names, else requirements.txt, else pyproject.toml's
 * dependencies, at the workspace root; null when there are none (or only comments).
 */
export async function findRequirements(workspace: string, named: string | undefined, python: string): Promise<Requirements | null> {
  const candidates = named ? [named] : [REQUIREMENTS_TXT, PYPROJECT_TOML];
  for (const rel of candidates) {
    const abs = await confinedPathNoSymlinks(workspace, rel);
    const st = await lstat(abs).catch(() => null);
    if (!st || !st.isFile()) {
      if (named) throw new Error(`the requirements file ${named} is not in the uploaded folder`);
      continue;
    }
    if (st.size > MAX_REQUIREMENTS_BYTES) throw new Error(`${rel} is larger than ${MAX_REQUIREMENTS_BYTES} bytes`);
    const text = rel.toLowerCase().endsWith('.toml') ? await pyprojectDependencies(abs, rel, python) : await readFile(abs, 'utf8');
    const meaningful = text.split('\n').some((l) => l.trim() !== '' && !l.trim().startsWith('#'));
    if (meaningful) {
      refuseOptions(rel, text);
      return { source: rel, text: text.endsWith('\n') ? text : text + '\n' };
    }
    if (named) return null;
  }
  return null;
}

/**
 * Refuses a requirements file that carries pip options: in a requirements file they override the
 * provider's pip configuration (`--no-binary :all:` against `PIP_ONLY_BINARY=:all:`, another
 * `--index-url`, `--trusted-host`), and `-r`/`-c`/`-e` reach past the file. Lines are read as pip
 * reads them (a trailing backslash continues one, `#` after a space starts a comment, anything
 * from the first token that starts with `-` is options); only `--hash=…` after a requirement
 * passes. `${VAR}`, which pip fills in from the install's environment (the provider's), is refused too.
 */
export function refuseOptions(source: string, text: string): void {
  const physical = text.split(/\r?\n/);
  for (let i = 0; i < physical.length; i++) {
    const first = i + 1;
    let line = physical[i]!;
    while (line.endsWith('\\') && i + 1 < physical.length) line = line.slice(0, -1) + physical[++i];
    line = line.replace(/(^|\s+)#.*$/, '').trim();
    if (!line) continue;
    const shown = line.length > 200 ? line.slice(0, 200) + '…' : line;
    const bad = line.startsWith('-') || line.split(/\s+/).some((t) => t.startsWith('-') && !t.startsWith('--hash='));
    if (bad) {
      throw new Error(
        `${source} line ${first}: "${shown}" is a pip option; the worker refuses option lines (-r, -c, -e, --index-url, --no-binary…: they would override its provider's pip settings or reach past the file). List the requirements themselves, one per line (--hash=… after one is fine)`,
      );
    }
    if (/\$\{[A-Z0-9_]+\}/.test(line)) throw new Error(`${source} line ${first}: "${shown}" names an environment variable (\${…}), which pip would fill in from the worker's environment; write the value itself`);
  }
}

const Dependencies = z.array(z.string().max(10_000)).max(10_000);

/** [project] dependencies, read by the interpreter's own TOML parser (tomllib, Python 3.11+). */
async function pyprojectDependencies(abs: string, rel: string, python: string): Promise<string> {
  const code = [
    'import json, sys',
    'try:',
    '    import tomllib',
    'except ImportError:',
    '    print("NOTOMLLIB"); sys.exit(0)',
    'with open(sys.argv[1], "rb") as f:',
    '    d = tomllib.load(f)',
    'deps = (d.get("project") or {}).get("dependencies") or []',
    'print(json.dumps(deps))',
  ].join('\n');
  const out = await new Promise<string>((res, rej) =>
    execFile(python, ['-c', code, abs], { timeout: 30_000, env: inheritedEnv(), maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`${rel} is not valid TOML: ${String(stderr).trim().split('\n').pop() ?? err.message}`));
      else res(String(stdout).trim());
    }),
  );
  if (out === 'NOTOMLLIB') throw new Error(`reading ${rel} needs Python 3.11 or later (tomllib) on the worker; name a requirements file instead`);
  const deps = Dependencies.safeParse(JSON.parse(out));
  if (!deps.success) throw new Error(`${rel}: [project] dependencies must be a list of strings`);
  return deps.data.join('\n');
}

/** The provider's pip configuration files that exist (global, user, PIP_CONFIG_FILE). */
export function pipConfigFiles(env: NodeJS.ProcessEnv): string[] {
  const home = env.HOME || os.homedir();
  const files = ['/etc/pip.conf', '/etc/xdg/pip/pip.conf', ...userPipConfigs(env, home)];
  if (env.PIP_CONFIG_FILE) files.push(env.PIP_CONFIG_FILE);
  return [...new Set(files)].filter(isFile);
}

function userPipConfigs(env: NodeJS.ProcessEnv, home: string): string[] {
  return [join(env.XDG_CONFIG_HOME || join(home, '.config'), 'pip', 'pip.conf'), join(home, '.pip', 'pip.conf')];
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * Files and folders the provider's pip configuration names in PIP_* variables (a wheelhouse for
 * PIP_FIND_LINKS, a file:// index): the install's sandbox sees them read-only, where /tmp or a
 * hidden folder would otherwise cover them.
 */
export function pipPaths(env: NodeJS.ProcessEnv): string[] {
  const out = new Set<string>();
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith('PIP_') || !v) continue;
    for (let t of v.split(/\s+/)) {
      if (t.startsWith('file://')) t = decodeURIComponent(t.slice('file://'.length));
      if (isAbsolute(t) && existsSync(t)) out.add(t);
    }
  }
  return [...out];
}

/**
 * The install's environment. pip runs the renter's code (an sdist's build backend, its setup.py),
 * so it gets what a job gets of the worker's environment (job-env.ts: PATH, locale, time zone),
 * plus the provider's settings for installs: the PIP_* variables, and its pip configuration
 * files. Nothing else of the worker's (cloud keys, Hub tokens) reaches it.
 */
export function installEnv(home: string, workerEnv: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const pip: Record<string, string> = {};
  for (const [k, v] of Object.entries(workerEnv)) if (v !== undefined && k.startsWith('PIP_')) pip[k] = v;
  // pip looks for the user's configuration under HOME, which is the install's own now: the
  // provider's user file is named instead (pip reads PIP_CONFIG_FILE last, on top of the global one).
  if (!pip.PIP_CONFIG_FILE) {
    const user = userPipConfigs(workerEnv, workerEnv.HOME || os.homedir()).find(isFile);
    if (user) pip.PIP_CONFIG_FILE = user;
  }
  return jobEnv({ workerEnv, specEnv: {}, set: { ...pip, HOME: home, PYTHONUNBUFFERED: '1' } });
}

/** What a session gets: the interpreter of its environment, and where it lives. */
export interface PreparedEnv {
  python: string;
  location: PythonLocation;
  reused: boolean;
  /** the session ended: the environment may be evicted again */
  release: () => void;
}

export interface EnsureHooks {
  signal: AbortSignal;
  /** installing: pip runs for this session; waiting: for another session's install of the same */
  onPhase: (phase: 'installing' | 'waiting') => void;
  onOutput: (stream: 'stdout' | 'stderr', data: string) => void;
}

export interface EnvCacheOptions {
  /** workDir/envs */
  dir: string;
  /** the installs' homes go here (removed after) */
  homesDir: string;
  maxBytes: number;
  /** the provider's interpreter, as configured */
  python: string;
  confinement: () => Confinement;
  log: LogFn;
  logFlushMs?: number;
  /** how often an install's folder is measured against the job disk limit; default 2000 */
  diskCheckMs?: number;
}

const Ready = z.object({
  bytes: z.number().int().min(0),
  source: z.string(),
  builtAt: z.number(),
  /** where the environment's python lives, asked before the install: the worker never runs it after */
  location: z.object({ executable: z.string(), needs: z.array(z.string()) }),
});
type Ready = z.infer<typeof Ready>;

interface BaseInfo {
  version: string;
  /** the provider's site folders: the environments see them after their own */
  sites: string[];
  /** an environment's site-packages, relative to it */
  purelib: string;
  /** the interpreter sees its base's site-packages (it is no venv, or one made with them) */
  system: boolean;
}

export class EnvCache {
  private readonly building = new Map<string, Promise<void>>();
  private readonly pins = new Map<string, number>();
  private base: Promise<BaseInfo> | undefined;

  constructor(private readonly opts: EnvCacheOptions) {}

  /** The environment's key: the requirements as pip reads them, the interpreter's path and version. */
  async key(req: Requirements): Promise<string> {
    const base = await this.baseInfo();
    return createHash('sha256').update(JSON.stringify([LAYOUT, this.opts.python, base.version, req.text])).digest('hex').slice(0, 32);
  }

  /** The environment for `req`: from the cache, or built now (once, however many ask at the same time). */
  async ensure(req: Requirements, hooks: EnsureHooks): Promise<PreparedEnv> {
    refuseOptions(req.source, req.text);
    const key = await this.key(req);
    const dir = join(this.opts.dir, key);
    this.pin(key);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.unpin(key);
    };
    try {
      let reused = true;
      for (;;) {
        hooks.signal.throwIfAborted();
        const pending = this.building.get(key);
        if (pending) {
          hooks.onPhase('waiting');
          reused = false;
          // Another session's install: when it fails (or was cancelled) this one tries its own.
          await abortable(pending.catch(() => undefined), hooks.signal);
          continue;
        }
        const ready = await this.readReady(key);
        if (this.building.has(key)) continue; // another session started it meanwhile
        if (ready) break;
        reused = false;
        const build = this.build(key, dir, req, hooks);
        this.building.set(key, build);
        try {
          await build;
        } finally {
          this.building.delete(key);
        }
        void this.evict().catch((err: Error) => this.opts.log('warn', 'could not evict environments', { err: err.message }));
        break;
      }
      const ready = await this.readReady(key);
      if (!ready) throw new Error(`the environment for ${req.source} went before it could be used`);
      // Its last use, for least-recently-used eviction (the worker's own marker, not the tree).
      const now = new Date();
      await lutimes(this.marker(key), now, now).catch(() => undefined);
      // The install (the renter's code) could have changed anything in the environment, a .pth
      // among it: the worker never runs its python itself, but takes where it lives from the marker.
      return { python: join(dir, 'bin', 'python'), location: ready.location, reused, release };
    } catch (err) {
      release();
      throw err;
    }
  }

  private pin(key: string): void {
    this.pins.set(key, (this.pins.get(key) ?? 0) + 1);
  }
  private unpin(key: string): void {
    const n = (this.pins.get(key) ?? 0) - 1;
    if (n <= 0) this.pins.delete(key);
    else this.pins.set(key, n);
  }

  private marker(key: string): string {
    return join(this.opts.dir, key + READY);
  }

  /** The environment's marker when it is built: read without following a link, its folder a real one. */
  private async readReady(key: string): Promise<Ready | null> {
    try {
      if (!(await lstat(join(this.opts.dir, key))).isDirectory()) return null;
      const f = await open(this.marker(key), constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        return Ready.parse(JSON.parse(await f.readFile('utf8')));
      } finally {
        await f.close();
      }
    } catch {
      return null;
    }
  }

  /** Written by the worker beside the environment: a fresh file (never through a link), then renamed into place. */
  private async writeReady(key: string, ready: Ready): Promise<void> {
    const tmp = join(this.opts.dir, `.${key}${READY}-${randomBytes(4).toString('hex')}`);
    const f = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    try {
      await f.writeFile(JSON.stringify(ready) + '\n');
    } finally {
      await f.close();
    }
    await rename(tmp, this.marker(key));
  }

  private baseInfo(): Promise<BaseInfo> {
    this.base ??= new Promise<BaseInfo>((res, rej) => {
      const code = [
        'import json, site, sys',
        'import sysconfig',
        'sites = [p for p in site.getsitepackages() + sys.path if p and ("site-packages" in p or "dist-packages" in p)]',
        // Where a venv of this interpreter keeps its packages ("venv" scheme: 3.11+), relative to it.
        'scheme = "venv" if "venv" in sysconfig.get_scheme_names() else "posix_prefix"',
        'purelib = sysconfig.get_path("purelib", scheme=scheme, vars={"base": "@B@", "platbase": "@B@"})',
        // A venv made without system site-packages does not see its base's: neither will the environments.
        'system = sys.prefix == sys.base_prefix or any(p in sys.path for p in site.getsitepackages([sys.base_prefix]))',
        'print(json.dumps({"version": sys.version, "sites": list(dict.fromkeys(sites)), "purelib": purelib, "system": system}))',
      ].join('\n');
      execFile(this.opts.python, ['-c', code], { timeout: 30_000, env: inheritedEnv(), maxBuffer: 1 << 20 }, (err, stdout) => {
        if (err) return rej(new Error(`could not ask ${this.opts.python} about itself: ${err.message.split('\n')[0]}`));
        try {
          const info = z.object({ version: z.string(), sites: z.array(z.string()), purelib: z.string().startsWith('@B@/'), system: z.boolean() }).parse(JSON.parse(String(stdout).trim().split('\n').pop() ?? ''));
          res({ ...info, purelib: info.purelib.slice('@B@/'.length) });
        } catch (e) {
          rej(e as Error);
        }
      });
    });
    // A failure is not remembered: the next session asks again.
    this.base.catch(() => (this.base = undefined));
    return this.base;
  }

  private async build(key: string, dir: string, req: Requirements, hooks: EnsureHooks): Promise<void> {
    const started = Date.now();
    hooks.onPhase('installing');
    this.opts.log('info', 'building an environment', { key, source: req.source });
    const base = await this.baseInfo();
    const conf = this.opts.confinement();
    const user = conf.sandbox.kind === 'bwrap' ? (conf.sandbox.user ?? null) : null;
    // A build that did not finish (a crash, a cancel) starts over.
    await rm(this.marker(key), { force: true });
    await rm(dir, { recursive: true, force: true });
    await mkdir(this.opts.dir, { recursive: true });
    // The venv itself is the provider's interpreter and standard library at work, nothing of the
    // renter's: made here. No pip inside it: the provider's pip (seen through its site-packages)
    // installs into it, and the environment is made in milliseconds instead of seconds.
    await execFileP(this.opts.python, ['-m', 'venv', '--without-pip', ...(base.system ? ['--system-site-packages'] : []), dir], inheritedEnv());
    const python = join(dir, 'bin', 'python');
    const purelib = join(dir, base.purelib);
    await mkdir(purelib, { recursive: true });
    // --system-site-packages shows the base interpreter's packages; a provider's own venv (its
    // PyTorch) lies elsewhere: a .pth adds the provider's site folders after the environment's own,
    // so an environment sees what the provider's interpreter sees, its own packages first.
    await writeFile(join(purelib, '_hearth_provider.pth'), base.sites.join('\n') + '\n');
    await writeFile(join(dir, REQ_COPY), req.text);
    // Where its python lives, asked now, while the environment holds only what the worker made.
    const location = await locatePython(python, inheritedEnv());
    if (user) await chownTree(dir, user.uid, user.gid);
    const home = join(this.opts.homesDir, `env-${key}`);
    await rm(home, { recursive: true, force: true });
    await mkdir(home, { recursive: true, mode: 0o700 });
    if (user) await chownTree(home, user.uid, user.gid);
    try {
      await this.runPip(key, dir, home, python, location, req, conf, hooks);
    } catch (err) {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    } finally {
      await rm(home, { recursive: true, force: true }).catch(() => undefined);
    }
    // Back to the worker's own user: no job user (nor anything else running as it) may change it.
    if (user) await chownTree(dir, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
    const bytes = (await diskUsage([dir])).bytes;
    await this.writeReady(key, { bytes, source: req.source, builtAt: Date.now(), location });
    this.opts.log('info', 'environment built', { key, source: req.source, bytes, ms: Date.now() - started });
  }

  private async runPip(key: string, dir: string, home: string, python: string, location: PythonLocation, req: Requirements, conf: Confinement, hooks: EnsureHooks): Promise<void> {
    const env = installEnv(home);
    const pipArgs = ['-m', 'pip', 'install', '--no-input', '--disable-pip-version-check', '--progress-bar', 'off', '-r', join(dir, REQ_COPY)];
    const cmd = await confinedCommand(conf, {
      // Unique per build: a worker that crashed mid-install may have left the last one's cgroup.
      name: `env-${key.slice(0, 12)}-${randomBytes(4).toString('hex')}`,
      workspace: dir,
      home,
      python: () => Promise.resolve(location),
      command: [python, ...pipArgs],
      readOnly: [...pipPaths(env), ...(env.PIP_CONFIG_FILE && isFile(env.PIP_CONFIG_FILE) ? [env.PIP_CONFIG_FILE] : [])],
    });
    let stderrTail = '';
    let lastCollecting = '';
    try {
      const child = spawn(cmd.file, cmd.argv, {
        cwd: dir,
        env,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe', ...(cmd.seccomp ? (['pipe'] as const) : [])],
      });
      child.on('error', () => undefined); // the spawn result below says why
      if (cmd.seccomp) {
        const fd = child.stdio[SECCOMP_FD] as NodeJS.WritableStream;
        fd.on('error', () => undefined);
        fd.end(cmd.seccomp);
      }
      const flushMs = this.opts.logFlushMs;
      const out = new LogBatcher({ flushMs, emit: (data) => hooks.onOutput('stdout', data) });
      const errb = new LogBatcher({ flushMs, emit: (data) => hooks.onOutput('stderr', data) });
      child.stdout!.on('data', (c: Buffer) => {
        out.push(c);
        const m = /^Collecting (\S+)/m.exec(c.toString());
        if (m) lastCollecting = m[1]!;
      });
      child.stderr!.on('data', (c: Buffer) => {
        errb.push(c);
        stderrTail = (stderrTail + c.toString()).slice(-16_384);
      });
      const onAbort = () => {
        try {
          if (child.pid) process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      };
      hooks.signal.addEventListener('abort', onAbort, { once: true });
      // The job's disk limit holds for its install too: measured as a job's folder is.
      let overDisk: string | null = null;
      const diskTimer = setInterval(() => {
        void diskUsage([dir, home]).then((u) => {
          if (overDisk !== null || (u.bytes <= conf.limits.diskBytes && !u.truncated)) return;
          overDisk = u.truncated
            ? `disk limit: the install's folder cannot be measured whole (${u.why ?? 'unknown'}) while installing the packages of ${req.source}`
            : `disk limit: ${formatBytes(conf.limits.diskBytes)} exceeded while installing the packages of ${req.source}`;
          onAbort();
        });
      }, this.opts.diskCheckMs ?? 2000);
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) => {
        child.once('error', (err) => {
          stderrTail += `\n${err.message}`;
          res([127, null]);
        });
        child.once('close', (c, s) => res(cmd.sandboxed ? bwrapStatus(c, s) : [c, s]));
      });
      hooks.signal.removeEventListener('abort', onAbort);
      clearInterval(diskTimer);
      out.end();
      errb.end();
      hooks.signal.throwIfAborted();
      if (overDisk !== null) throw new Error(overDisk);
      if (code !== 0) throw new Error(pipFailure(req.source, stderrTail, lastCollecting, signal ? `killed by ${signal}` : `exited with code ${code}`));
    } finally {
      cmd.network?.close();
      const err = await cmd.cgroup?.remove();
      if (err) this.opts.log('warn', 'could not remove the install\'s cgroup', { err });
    }
  }

  /** Removes the least recently used environments no session is using until the rest fit the cap. */
  async evict(): Promise<void> {
    const names = await readdir(this.opts.dir).catch(() => [] as string[]);
    // Folders <key>, their markers <key>.ready, and a marker being written (.<key>.ready-…).
    const keys = new Set(names.map((n) => (n.startsWith('.') ? n.slice(1).split(READY)[0]! : n.endsWith(READY) ? n.slice(0, -READY.length) : n)));
    const envs: { key: string; bytes: number; used: number }[] = [];
    for (const key of keys) {
      if (this.building.has(key) || this.pins.has(key)) {
        const r = await this.readyInfo(key);
        if (r) envs.push({ key, bytes: r.bytes, used: Infinity });
        continue;
      }
      const r = await this.readyInfo(key);
      if (!r) {
        // A build that never finished (the worker stopped mid-install), or a marker left alone: only disk.
        await this.remove(key, names);
        continue;
      }
      envs.push({ key, ...r });
    }
    let total = envs.reduce((a, e) => a + e.bytes, 0);
    for (const e of envs.sort((a, b) => a.used - b.used)) {
      if (total <= this.opts.maxBytes) break;
      if (e.used === Infinity) continue;
      await this.remove(e.key, names);
      total -= e.bytes;
      this.opts.log('info', 'evicted an environment (least recently used)', { key: e.key, bytes: e.bytes });
    }
  }

  /** The marker first (the environment is no longer ready), then the folder (rm removes links as links). */
  private async remove(key: string, names: string[]): Promise<void> {
    for (const n of names) if (n.startsWith(`.${key}${READY}-`)) await rm(join(this.opts.dir, n), { force: true });
    await rm(this.marker(key), { force: true });
    await rm(join(this.opts.dir, key), { recursive: true, force: true });
  }

  private async readyInfo(key: string): Promise<{ bytes: number; used: number } | null> {
    const r = await this.readReady(key);
    if (!r) return null;
    const st = await lstat(this.marker(key)).catch(() => null);
    return st ? { bytes: r.bytes, used: st.mtimeMs } : null;
  }
}

/**
 * The reason a failed install ends the session with: pip's own ERROR lines (they name the
 * requirement: "No matching distribution found for nosuchpkg==1.0"), and the requirement pip was
 * at when they do not.
 */
export function pipFailure(source: string, stderr: string, lastCollecting: string, how: string): string {
  const errors = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^ERROR:/.test(l));
  let why = errors.length ? errors.join('; ') : stderr.trim().split('\n').map((l) => l.trim()).filter(Boolean).slice(-3).join('; ');
  if (/No module named pip\b/.test(stderr)) why = 'the worker\'s Python has no pip (its provider can add it: apt-get install python3-pip, or python3 -m ensurepip)';
  else if (lastCollecting && !why.includes(lastCollecting)) why = `while installing ${lastCollecting}: ${why || how}`;
  return `could not install the packages of ${source} (pip ${how}): ${why || 'no output'}`.slice(0, 10_000);
}

function execFileP(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((res, rej) =>
    execFile(file, args, { timeout: 120_000, env, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`${basename(file)} ${args.slice(0, 2).join(' ')} failed: ${String(stderr).trim().split('\n').pop() || err.message.split('\n')[0]}`));
      else res(String(stdout));
    }),
  );
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((res, rej) => {
    if (signal.aborted) return rej(signal.reason as Error);
    const onAbort = () => rej(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        res(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        rej(e as Error);
      },
    );
  });
}
