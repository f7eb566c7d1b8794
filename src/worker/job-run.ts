// One job from assignment to its terminal status: materialise the workspace from blobs, run the
// entry under Python in its own process group, stream its output and TensorBoard scalars, obey
// cancel (SIGTERM, grace, SIGKILL), then upload the outputs it wrote and report how it ended.
// Nothing here throws out of run(): whatever goes wrong ends as a 'failed' status with a reason.
// The job runs with the provider's limits (limits.ts): a job stopped by one ends failed with a
// reason naming it. Cancel works in every phase, the last one (reading its event files,
// uploading its outputs) included.
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { chmod, copyFile, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import type { BrokerClient } from '../client/api';
import { isNotebookEntry, type EventBody, type JobAssignment, type JobStatus, type KernelRequest } from '../shared/protocol';
import { findOutputs, hashFile, uploadOutput } from './artifacts';
import type { BlobCache } from './blob-cache';
import { confinedPath, confinedPathNoSymlinks } from './confine';
import type { HfCache } from './hf-cache';
import { inheritedEnv, jobEnv } from './job-env';
import { chownTree, confinedCommand, type ConfinedCommand, type Confinement } from './confined';
import { diskUsage, removeTree } from './disk-usage';
import { findRequirements, pipConfigFiles, type EnvCache, type PreparedEnv, type Requirements } from './env-cache';
import { DEFAULT_LIMITS, formatBytes, type JobCgroup, type JobLimits, type LimitBackend } from './limits';
import { LogBatcher } from './log-batcher';
import { KernelChannel } from './kernel-channel';
import { entryArgv, kernelArgv } from './notebook-entry';
import { redactPaths } from './redact-paths';
import { bwrapStatus, locatePython, sandboxProcesses, SECCOMP_FD, type JobUser, type PythonLocation, type Sandbox } from './sandbox';
import { TfEventsTailer, type ScalarDecoder } from './tailer';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFn = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

export interface JobRunContext {
  /** jobs/<jobId> goes under this */
  jobsDir: string;
  python: string;
  killGraceMs: number;
  isGpuHost: boolean;
  client: BrokerClient;
  blobs: BlobCache;
  createDecoder: () => ScalarDecoder;
  /** queue one event of this job for the broker (in order) */
  emit: (body: EventBody) => void;
  log: LogFn;
  tailIntervalMs?: number;
  logFlushMs?: number;
  /** how long artifact uploads keep retrying while the broker is unreachable */
  uploadRetryMs?: () => number;
  /** how the job process is confined; default none */
  sandbox?: Sandbox;
  /** the job's $HOME goes under this (homes/<jobId>, removed when it ends); default jobsDir/../homes */
  homesDir?: string;
  /** what one job may take; default DEFAULT_LIMITS */
  limits?: JobLimits;
  /** how memory and process limits are enforced; default rlimits */
  limitBackend?: LimitBackend;
  /** the worker's folders, named in reasons by placeholders rather than their paths */
  privatePaths?: [string, string][];
  /** caps on the TensorBoard tailer (bytes of one file, of the whole job) */
  tailMaxFileBytes?: number;
  tailMaxJobBytes?: number;
  /** how often the job's folder is measured against its disk limit; default 2000 */
  diskCheckMs?: number;
  /** the per-account Hugging Face caches (HF_HOME); none: a job's HF_HOME is its private home's */
  hfCache?: HfCache;
  /** the worker's cache of environments built from sessions' requirements */
  envs?: EnvCache;
  /** where ctx.python lives, asked once per worker; default: asked for each session */
  locatePython?: () => Promise<PythonLocation>;
}

export type JobPhase = 'preparing' | 'running' | 'finishing' | 'done';

const MATERIALISE_CONCURRENCY = 8;
const UPLOAD_CONCURRENCY = 4;
/** after the main process exits, how long its pipes may stay open (held by an escaped descendant) */
const PIPE_CLOSE_WAIT_MS = 3000;

type Ending = { status: JobStatus; exitCode?: number | null; signal?: string | null; reason?: string | null };

export class JobRun {
  readonly jobId: string;
  readonly workspace: string;
  phase: JobPhase = 'preparing';
  private child: ChildProcess | undefined;
  private cancelReason: string | null = null;
  private killTimer: NodeJS.Timeout | undefined;
  private readonly abort = new AbortController();
  /** aborted by a cancel that comes while the job is finishing */
  private readonly finishAbort = new AbortController();
  private outputPaused = false;
  private exited = false;
  private sandboxed = false;
  /** set when the worker stopped the job for a limit: the reason it ends with */
  private limitReason: string | null = null;
  private tailer: TfEventsTailer | undefined;
  readonly home: string;
  /** lets the cache evict the session's environment again, once the session ended */
  private releaseEnv: (() => void) | undefined;
  /** a kernel session's channel to its bridge; undefined for a job */
  private readonly kernel: KernelChannel | undefined;
  /** lets go of the account's Hugging Face cache folder once the job ends */
  private releaseHfCache: (() => void) | undefined;
  /** that folder and its size when the job got it: what the job adds counts against its disk limit */
  private hfCache: { dir: string; bytesAtStart: number } | undefined;

  constructor(
    readonly assignment: JobAssignment,
    private readonly ctx: JobRunContext,
  ) {
    this.jobId = assignment.jobId;
    this.workspace = join(ctx.jobsDir, assignment.jobId);
    this.home = join(ctx.homesDir ?? join(ctx.jobsDir, '..', 'homes'), assignment.jobId);
    // A kernel session and a notebook run both report Jupyter messages on stdout.
    if (assignment.spec.kind === 'kernel' || isNotebookEntry(assignment.spec.entry)) this.kernel = new KernelChannel((body) => this.emit(body));
  }

  /** A request for a kernel session (written to its bridge; queued until the bridge runs). */
  request(r: KernelRequest): void {
    if (!this.kernel) return this.log('warn', 'a kernel request for a job that is no kernel session', { type: r.type });
    if (this.exited) return;
    this.kernel.request(r);
  }

  /** Queues an event; what the worker itself says (reasons, notices) names no path of the provider's. */
  private emit(body: EventBody): void {
    const names = { workspace: this.workspace, others: [[this.home, '~'], ...(this.ctx.privatePaths ?? [])] as [string, string][] };
    if (body.type === 'status' && body.reason) body = { ...body, reason: redactPaths(body.reason, names) };
    else if (body.type === 'notice') body = { ...body, message: redactPaths(body.message, names) };
    this.ctx.emit(body);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }
  get cancelled(): boolean {
    return this.cancelReason !== null;
  }

  private log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    this.ctx.log(level, msg, { jobId: this.jobId, ...fields });
  }

  /** Runs the job to its end; resolves once its terminal status was queued. Never rejects. */
  async run(): Promise<void> {
    let status: Ending;
    try {
      status = await this.runInner();
    } catch (err) {
      this.log('error', 'job failed in the worker', { err: (err as Error).message });
      this.emit({ type: 'notice', level: 'error', message: `worker error: ${(err as Error).message}`.slice(0, 10_000) });
      status = this.cancelled
        ? { status: 'cancelled', reason: this.cancelReason }
        : { status: 'failed', reason: `worker error: ${(err as Error).message}`.slice(0, 10_000) };
    }
    this.phase = 'done';
    this.releaseHfCache?.();
    this.releaseEnv?.();
    // The job's home holds caches (pip, torch hub, HF): nobody wants them once it ended.
    await removeTree(this.home).catch((err: Error) => this.log('warn', 'could not remove the job\'s home', { err: err.message }));
    if (status.reason) status.reason = status.reason.slice(0, 10_000);
    this.emit({ type: 'status', ...status });
    this.log('info', 'job ended', { ...status });
  }

  /**
   * Stops the job: before start it never starts; running, its process group gets SIGTERM, then
   * SIGKILL; finishing, the reading of its event files and the uploads stop where they are.
   */
  cancel(reason: string, opts: { finishing?: 'stop' | 'continue' } = {}): void {
    if (this.phase === 'done') return;
    // Cancelled while finishing (or again, once there): nothing more is read or uploaded, unless
    // the worker itself is stopping and wants the outputs out first.
    if (this.phase === 'finishing') {
      if (opts.finishing === 'continue') return;
      this.cancelReason ??= reason;
      this.log('info', 'cancelling a finishing job: its event files and outputs are left where they are', { reason });
      this.finishAbort.abort(new Error(`cancelled: ${reason}`));
      this.tailer?.abort();
      return;
    }
    if (this.cancelReason !== null) return;
    this.cancelReason = reason;
    this.log('info', 'cancelling job', { reason, phase: this.phase });
    // Before it runs: inputs stop downloading. Running: it gets SIGTERM, and what it wrote by
    // then is still read and uploaded (a checkpoint saved on SIGTERM is the point).
    this.abort.abort(new Error(`cancelled: ${reason}`));
    this.terminateWithGrace();
  }

  /** Stops the job process, if it runs: SIGTERM, a grace, then SIGKILL. */
  private terminateWithGrace(): void {
    if (this.child && !this.exited && !this.killTimer) {
      this.terminate();
      this.killTimer = setTimeout(() => {
        if (!this.exited) {
          this.log('warn', 'job ignored SIGTERM; sending SIGKILL', { graceMs: this.ctx.killGraceMs });
          this.signalGroup('SIGKILL');
        }
      }, this.ctx.killGraceMs);
    }
  }

  /** Backpressure: stop reading the job's output while the broker is behind (the job blocks on write). */
  pauseOutput(): void {
    if (this.outputPaused || this.exited) return;
    this.outputPaused = true;
    this.child?.stdout?.pause();
    this.child?.stderr?.pause();
  }
  resumeOutput(): void {
    if (!this.outputPaused) return;
    this.outputPaused = false;
    this.child?.stdout?.resume();
    this.child?.stderr?.resume();
  }

  /**
   * SIGTERM, so the job can save its state. Unsandboxed: its process group. Sandboxed: every
   * process in its pid namespace but the namespace's init (bwrap itself dying would SIGKILL them
   * all at once, leaving no grace); before that namespace exists, bwrap's group.
   */
  private terminate(): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    const sp = this.sandboxed ? sandboxProcesses(pid) : null;
    if (!sp) return this.signalGroup('SIGTERM');
    for (const m of sp.members) {
      if (m === sp.init) continue;
      try {
        process.kill(m, 'SIGTERM');
      } catch {
        /* gone meanwhile */
      }
    }
  }

  private signalGroup(sig: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      // Negative pid: the whole process group, so the job's own children go too.
      process.kill(-pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') this.log('warn', 'kill failed', { sig, err: (err as Error).message });
    }
  }

  private async runInner(): Promise<Ending> {
    const spec = this.assignment.spec;
    const sandbox = this.ctx.sandbox ?? { kind: 'none' };
    const user: JobUser | null = sandbox.kind === 'bwrap' ? (sandbox.user ?? null) : null;
    await rm(this.workspace, { recursive: true, force: true });
    await mkdir(this.workspace, { recursive: true });
    // Whatever the worker's umask: bwrap (root without DAC override) must enter the folder it
    // binds and chdirs into once it belongs to the job user.
    await chmod(this.workspace, 0o755);
    await rm(this.home, { recursive: true, force: true });
    await mkdir(this.home, { recursive: true, mode: 0o700 });
    try {
      await this.materialise();
      // A root worker's job runs as the job user: its folder and home become that user's. The
      // worker (root) still reads whatever the job leaves there.
      if (user) for (const d of [this.workspace, this.home]) await chownTree(d, user.uid, user.gid);
    } catch (err) {
      if (this.cancelled) return { status: 'cancelled', reason: this.cancelReason };
      return { status: 'failed', reason: `could not prepare the workspace: ${(err as Error).message}` };
    }
    if (this.cancelled) return { status: 'cancelled', reason: this.cancelReason };

    const logdirAbs = confinedPath(this.workspace, spec.logdir);
    const set: Record<string, string> = {
      HOME: this.home,
      PYTHONUNBUFFERED: '1',
      HEARTH_JOB_ID: this.jobId,
      HEARTH_LOGDIR: logdirAbs,
    };
    if (this.ctx.isGpuHost) {
      set.CUDA_VISIBLE_DEVICES = this.assignment.gpuIndices.join(',');
      // nvidia-smi numbers GPUs by PCI bus; CUDA's default order may differ, so pin it to match.
      set.CUDA_DEVICE_ORDER = 'PCI_BUS_ID';
    }
    const binds: string[] = [];
    if (this.ctx.hfCache && this.assignment.cacheKey) {
      try {
        const hf = await this.ctx.hfCache.acquire(this.assignment.cacheKey, user);
        this.releaseHfCache = hf.release;
        this.hfCache = { dir: hf.dir, bytesAtStart: (await diskUsage([hf.dir])).bytes };
        set.HF_HOME = hf.dir;
        binds.push(hf.dir);
      } catch (err) {
        // Not worth failing the job over: it downloads into its own home instead.
        this.log('warn', 'no Hugging Face cache for this job', { err: (err as Error).message });
      }
    }
    const env = jobEnv({ workerEnv: process.env, specEnv: spec.env, secrets: this.assignment.secrets, set });

    let argv: string[];
    try {
      argv = spec.kind === 'kernel' ? kernelArgv(this.workspace, spec.idleMinutes) : entryArgv(this.workspace, spec.entry, spec.args);
    } catch (err) {
      return { status: 'failed', reason: (err as Error).message };
    }
    if (sandbox.kind === 'unavailable') return { status: 'failed', reason: sandbox.reason };

    // The session's packages, when it has requirements: a cached environment, built first if need be.
    let python = this.ctx.python;
    let location: PythonLocation | undefined;
    const prepared = await this.prepareEnvironment();
    if ('status' in prepared) return prepared;
    if (prepared.env) {
      python = prepared.env.python;
      location = prepared.env.location;
      this.releaseEnv = prepared.env.release;
      // As if activated: `python`, `pip` and the packages' commands on PATH are the environment's.
      const bin = dirname(python);
      env.PATH = `${bin}:${env.PATH ?? ''}`;
      env.VIRTUAL_ENV = dirname(bin);
    }
    if (this.cancelled) return { status: 'cancelled', reason: this.cancelReason };

    let cmd: ConfinedCommand;
    try {
      cmd = await confinedCommand(this.confinement, {
        name: this.jobId,
        workspace: this.workspace,
        home: this.home,
        // Where the interpreter really lives, asked in the worker's own environment (a pyenv shim
        // needs $HOME, which the job will not see).
        python: async () => {
          try {
            return location ?? (await (this.ctx.locatePython ?? (() => locatePython(python, inheritedEnv())))());
          } catch (err) {
            throw new Error(`could not start ${python}: ${(err as Error).message}`);
          }
        },
        command: [python, ...argv],
        // The provider's pip configuration is for installs, not for jobs to read.
        mask: pipConfigFiles(process.env),
        binds,
      });
    } catch (err) {
      if (this.cancelled) return { status: 'cancelled', reason: this.cancelReason };
      return { status: 'failed', reason: (err as Error).message };
    }
    this.sandboxed = cmd.sandboxed;
    try {
      return await this.runProcess(cmd.file, cmd.argv, env, cmd.seccomp, cmd.cgroup);
    } finally {
      cmd.network?.close();
      const err = await cmd.cgroup?.remove();
      if (err) this.log('warn', 'could not remove the job\'s cgroup', { err });
    }
  }

  private get confinement(): Confinement {
    return {
      sandbox: this.ctx.sandbox ?? { kind: 'none' },
      limits: this.limits,
      limitBackend: this.ctx.limitBackend ?? { kind: 'rlimit', why: 'no cgroups configured' },
      isGpuHost: this.ctx.isGpuHost,
    };
  }

  /**
   * Finds the session's requirements and gets their environment from the worker's cache (built
   * now, with pip's output in the log, when no earlier session built it). A failure ends the
   * session with a reason naming the requirement.
   */
  private async prepareEnvironment(): Promise<Ending | { env?: PreparedEnv }> {
    const spec = this.assignment.spec;
    const envs = this.ctx.envs;
    let req: Requirements | null;
    try {
      req = await findRequirements(this.workspace, spec.requirements, this.ctx.python);
    } catch (err) {
      return { status: 'failed', reason: (err as Error).message };
    }
    if (!req) return {};
    if (!envs) {
      this.emit({ type: 'notice', level: 'warning', message: `${req.source}: this worker does not install packages; the session runs with its Python as it is` });
      return {};
    }
    try {
      const env = await envs.ensure(req, {
        signal: this.abort.signal,
        onPhase: (phase) => this.emit({ type: 'setup', phase, source: req.source }),
        onOutput: (stream, data) => this.emit({ type: 'log', stream, data: redactPaths(data, { workspace: this.workspace, others: this.ctx.privatePaths ?? [] }) }),
      });
      this.emit({ type: 'setup', phase: 'ready', source: req.source, reused: env.reused });
      return { env };
    } catch (err) {
      if (this.cancelled) return { status: 'cancelled', reason: this.cancelReason };
      return { status: 'failed', reason: (err as Error).message };
    }
  }

  private get limits(): JobLimits {
    return this.ctx.limits ?? DEFAULT_LIMITS;
  }

  private async runProcess(file: string, argv: string[], env: NodeJS.ProcessEnv, seccomp: Buffer | null, cgroup: JobCgroup | undefined): Promise<Ending> {
    const spec = this.assignment.spec;
    const child = spawn(file, argv, {
      cwd: this.workspace,
      env,
      detached: true,
      // fd 3 carries the seccomp program to bwrap (--seccomp 3); bwrap closes it before the job runs.
      // A kernel session takes its requests on stdin; a job gets none.
      stdio: [this.assignment.spec.kind === 'kernel' ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(seccomp ? (['pipe'] as const) : [])],
    });
    this.child = child;
    // An 'error' with no listener would throw and take the whole worker down.
    child.on('error', (err) => this.log('warn', 'job process error', { err: err.message }));
    if (seccomp) {
      const fd = child.stdio[SECCOMP_FD] as NodeJS.WritableStream & { on: (e: string, f: () => void) => void };
      fd.on('error', () => undefined); // bwrap gone before it read it: the exit says why
      fd.end(seccomp);
    }
    const spawned = await new Promise<Error | null>((resolve) => {
      child.once('spawn', () => resolve(null));
      child.once('error', (err) => resolve(err));
    });
    if (spawned) {
      this.exited = true;
      return { status: 'failed', reason: `could not start ${file}: ${spawned.message}` };
    }
    this.phase = 'running';
    this.log('info', 'job started', { pid: child.pid, entry: spec.entry });
    this.emit({ type: 'status', status: 'running' });
    const flushMs = this.ctx.logFlushMs;
    // A job's stdout is its log; a kernel session's is the bridge's messages.
    const out = this.kernel ?? new LogBatcher({ flushMs, emit: (data) => this.emit({ type: 'log', stream: 'stdout', data }) });
    if (this.kernel && child.stdin) this.kernel.attach(child.stdin);
    const errb = new LogBatcher({ flushMs, emit: (data) => this.emit({ type: 'log', stream: 'stderr', data }) });
    const pipesDone = Promise.all([drain(child.stdout!, out), drain(child.stderr!, errb)]);
    if (this.outputPaused) {
      child.stdout!.pause();
      child.stderr!.pause();
    }

    const tailer = new TfEventsTailer({
      workspace: this.workspace,
      logdir: spec.logdir,
      createDecoder: this.ctx.createDecoder,
      intervalMs: this.ctx.tailIntervalMs,
      maxFileBytes: this.ctx.tailMaxFileBytes,
      maxJobBytes: this.ctx.tailMaxJobBytes,
      onPoints: (points) => this.emit({ type: 'scalars', points }),
      onWarning: (message) => this.emit({ type: 'notice', level: 'warning', message: message.slice(0, 10_000) }),
    });
    this.tailer = tailer;
    tailer.start();
    const disk = this.watchDisk();

    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
      child.once('exit', (c, s) => resolve(this.sandboxed ? bwrapStatus(c, s) : [c, s]));
    });
    this.exited = true;
    this.phase = 'finishing';
    disk.stop();
    if (this.killTimer) clearTimeout(this.killTimer);
    // The job is over when its main process is: descendants left behind go with it.
    this.signalGroup('SIGKILL');
    // What is left in the pipes is small (the process is gone); read it even under backpressure.
    child.stdout?.resume();
    child.stderr?.resume();
    let pipeTimer: NodeJS.Timeout | undefined;
    await Promise.race([pipesDone, new Promise((r) => (pipeTimer = setTimeout(r, PIPE_CLOSE_WAIT_MS)))]);
    if (pipeTimer) clearTimeout(pipeTimer);
    // An escaped descendant (new session) may still hold the pipes: stop waiting for it.
    child.stdout?.destroy();
    child.stderr?.destroy();
    out.end();
    errb.end();
    this.log('info', 'job process exited', { code, signal });
    const verdict = cgroup ? await cgroup.verdict() : { oom: false, pidsHit: false };

    await tailer.stop();
    await this.uploadOutputs();

    if (this.cancelReason !== null) return { status: 'cancelled', exitCode: code, signal, reason: this.cancelReason };
    if (this.limitReason !== null) return { status: 'failed', exitCode: code, signal, reason: this.limitReason };
    if (code === 0) return { status: 'succeeded', exitCode: 0 };
    const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
    let reason = how;
    if (verdict.oom) reason = `out of memory: limit ${formatBytes(this.limits.memoryBytes)} (${how})`;
    else if (verdict.pidsHit) reason = `${how} after reaching the process limit (${this.limits.pids})`;
    return { status: 'failed', exitCode: code, signal, reason };
  }

  /**
   * Measures the job's folder and home every few seconds (allocated blocks, as du does, so a
   * sparse file counts for what it takes) and stops the job when they pass its disk limit.
   */
  private watchDisk(): { stop: () => void } {
    const limit = this.limits.diskBytes;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const tick = async () => {
      if (stopped) return;
      const started = Date.now();
      const used = await diskUsage([this.workspace, this.home]);
      // What the job added to its account's Hugging Face cache counts too (a huge cache that
      // cannot be walked whole is not held against it).
      const hf = this.hfCache && (await diskUsage([this.hfCache.dir]));
      const added = hf && !hf.truncated ? Math.max(0, hf.bytes - this.hfCache!.bytesAtStart) : 0;
      // A folder of very many files makes each walk dear: walk at most a tenth of the time.
      const next = Math.max(this.ctx.diskCheckMs ?? 2000, 10 * (Date.now() - started));
      if (stopped) return;
      if (used.bytes + added > limit || used.truncated) {
        this.limitReason = used.truncated
          ? `disk limit: its folder cannot be measured whole (${used.why ?? 'unknown'})`
          : `disk limit: ${formatBytes(limit)} exceeded (${formatBytes(used.bytes + added)} in its folder${added ? ' and the Hugging Face cache' : ''})`;
        this.log('warn', 'job over its disk limit; stopping it', { used: used.bytes, limit });
        // No grace: each second of it is more of the provider's disk.
        this.signalGroup('SIGKILL');
        return;
      }
      timer = setTimeout(() => void tick(), next);
    };
    timer = setTimeout(() => void tick(), this.ctx.diskCheckMs ?? 2000);
    return {
      stop: () => {
        stopped = true;
        if (timer) clearTimeout(timer);
      },
    };
  }

  private async materialise(): Promise<void> {
    const files = this.assignment.spec.manifest.files;
    // Small blobs many to a request first; the loop below then finds them cached.
    await this.ctx.blobs.prefetch(files, this.abort.signal);
    let next = 0;
    const worker = async () => {
      while (next < files.length) {
        this.abort.signal.throwIfAborted();
        const f = files[next++]!;
        const dest = await confinedPathNoSymlinks(this.workspace, f.path);
        this.ctx.blobs.pin(f.sha256);
        try {
          const cached = await this.ctx.blobs.ensure(f.sha256, f.size, this.abort.signal);
          await mkdir(dirname(dest), { recursive: true });
          // A copy, not a hard link: a job writing to its input in place must not alter the cache.
          // FICLONE makes it a cheap reflink where the file system can.
          await copyFile(cached, dest, constants.COPYFILE_FICLONE);
          await chmod(dest, f.executable ? 0o755 : 0o644);
        } finally {
          this.ctx.blobs.unpin(f.sha256);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(MATERIALISE_CONCURRENCY, files.length) }, worker));
    await this.ctx.blobs.prune().catch((err: Error) => this.log('warn', 'could not prune the blob cache', { err: err.message }));
  }

  private async uploadOutputs(): Promise<void> {
    const spec = this.assignment.spec;
    if (spec.outputs.length === 0) return;
    let files;
    try {
      files = await findOutputs(this.workspace, spec.outputs);
    } catch (err) {
      this.emit({ type: 'notice', level: 'error', message: `could not list outputs: ${(err as Error).message}` });
      return;
    }
    // The disk watch counts blocks a file takes; a sparse file takes none yet uploads whole. The
    // outputs as uploaded (their sizes, in path order) stay within the disk limit too.
    const limit = this.limits.diskBytes;
    let total = 0;
    const skipped: string[] = [];
    files = files.filter((f) => {
      if (total + f.size > limit) {
        skipped.push(f.path);
        return false;
      }
      total += f.size;
      return true;
    });
    if (skipped.length > 0) {
      const list = skipped.slice(0, 20).join(', ') + (skipped.length > 20 ? `, and ${skipped.length - 20} more` : '');
      this.emit({ type: 'notice', level: 'error', message: `not uploaded, past the disk limit of ${formatBytes(limit)} for a job's outputs: ${list}`.slice(0, 10_000) });
    }
    const deadline = Date.now() + (this.ctx.uploadRetryMs?.() ?? 120_000);
    let next = 0;
    const results: (EventBody | undefined)[] = new Array(files.length);
    // A file the job neither made nor changed is the renter's own input (a model.pt uploaded with
    // the project): returning it would pass old weights off as the run's.
    const inputs = new Map(spec.manifest.files.map((f) => [f.path, f]));
    const unchanged: string[] = [];
    const worker = async () => {
      while (next < files.length) {
        // Cancelled while finishing: what is not uploaded yet stays on the worker.
        if (this.finishAbort.signal.aborted) return;
        const i = next++;
        const f = files[i]!;
        try {
          const input = f.path === spec.entry && isNotebookEntry(spec.entry) ? undefined : inputs.get(f.path);
          if (input && input.size === f.size && (await hashFile(f.abs)).sha256 === input.sha256) {
            unchanged.push(f.path);
            continue;
          }
          const artifact = await uploadOutput(this.ctx.client, this.jobId, f, { deadline, signal: this.finishAbort.signal });
          results[i] = { type: 'artifact', artifact };
        } catch (err) {
          this.log('warn', 'artifact upload failed', { path: f.path, err: (err as Error).message });
          results[i] = { type: 'notice', level: 'error', message: `could not upload ${f.path}: ${(err as Error).message}`.slice(0, 10_000) };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(UPLOAD_CONCURRENCY, files.length) }, worker));
    // Emitted in path order whatever order the uploads finished in, so the log reads the same each time.
    for (const r of results) if (r) this.emit(r);
    if (!results.some((r) => r?.type === 'artifact') && !this.finishAbort.signal.aborted) {
      const same = unchanged.length ? `; unchanged from the upload, so not returned: ${unchanged.sort().slice(0, 10).join(', ')}${unchanged.length > 10 ? ', …' : ''}` : '';
      this.emit({ type: 'notice', level: 'info', message: `the job produced no new or changed files matching its outputs (${spec.outputs.join(', ')})${same}`.slice(0, 10_000) });
    }
  }
}

async function drain(stream: Readable, batcher: { push(chunk: Buffer): void }): Promise<void> {
  return new Promise((resolve) => {
    stream.on('data', (chunk: Buffer) => batcher.push(chunk));
    stream.once('close', () => resolve());
    stream.once('error', () => resolve());
  });
}
