// The worker agent a GPU provider runs (`hearth worker --broker URL --token T`): it connects out to
// the broker, offers this host's GPUs (or its CPU), runs the jobs the broker assigns, and makes
// sure every event of every job reaches the broker's durable log exactly in order, across
// reconnects and broker restarts.
import { mkdir, readdir, readFile, rename, stat, statfs, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import { join } from 'node:path';
import { BrokerClient, normalizeBrokerUrl } from '../client/api';
import { TfEventsDecoder } from '../shared/tfevents';
import { Id, PROTOCOL_VERSION, type BrokerToWorker, type EventBody, type GpuInfo, type JobAssignment, type PythonStack, type WorkerHello } from '../shared/protocol';
import { DEFAULT_HF_CACHE_MAX_BYTES, HfCache } from './hf-cache';
import { BlobCache } from './blob-cache';
import { BrokerConnection } from './connection';
import { EventOutbox } from './event-outbox';
import { inheritedEnv } from './job-env';
import { pickPython } from './python-probe';
import { fitEvent, MAX_EVENT_BYTES } from './event-size';
import { probeDevices, queryDriverVersion } from './gpu-probe';
import { DEFAULT_ENV_CACHE_BYTES, ENVS_DIR, EnvCache } from './env-cache';
import { diskUsage, removeTree } from './disk-usage';
import { JobRun, type LogFn, type LogLevel } from './job-run';
import { DEFAULT_KEPT_JOBS_BYTES, DEFAULT_LIMITS, formatBytes, prepareLimits, type JobLimits, type LimitBackend } from './limits';
import { locatePython, prepareSandbox, type PythonLocation, type Sandbox, type SandboxMode } from './sandbox';
import { prepareSessionNetwork, type JobNetworkMode, type SessionNetworkKind } from './session-network';
import { TelemetrySampler } from './telemetry';

export const WORKER_VERSION = '0.1.0';

export interface WorkerOptions {
  brokerUrl: string;
  token: string;
  name?: string;
  workDir: string;
  /** default 'python3' */
  python?: string;
  /** path of nvidia-smi, default 'nvidia-smi' */
  nvidiaSmi?: string;
  pricePerHour?: number;
  /** between SIGTERM and SIGKILL on cancel; default 10000 */
  killGraceMs?: number;
  /** telemetry sampling period; default 2000 */
  telemetryMs?: number;
  log?: (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;
  /**
   * Event bytes the broker has not acknowledged (all jobs) above which jobs' output stops being
   * read until it catches up; default 64 MiB. Nothing is dropped either way.
   */
  maxUnackedBytes?: number;
  /** size of the blob cache (workDir/blobs) before least recently used blobs go; default 20 GiB */
  maxCacheBytes?: number;
  /**
   * Folders of finished jobs kept under workDir/jobs for the provider to look into (the newest
   * ones); older ones are removed. Default 10.
   */
  keepFinishedJobDirs?: number;
  /** disk the kept folders of finished jobs may take together; the oldest go first past it. Default 20 GiB */
  keptJobsMaxBytes?: number;
  /**
   * How jobs are confined (see sandbox.ts). 'auto' (default): under bubblewrap when it works
   * here, else unsandboxed with a warning; 'bwrap': required, jobs fail without it; 'none': not.
   */
  sandbox?: SandboxMode;
  /** the bwrap binary; default 'bwrap' on PATH */
  bwrapPath?: string;
  /**
   * What sandboxed sessions' own network namespaces reach besides their loopback (see
   * session-network.ts): 'internet' (default) through user-mode NAT, or 'none'. 'host' shares the
   * host's network as workers before it did: only for the benchmark's baseline, no CLI flag offers it.
   */
  jobNetwork?: JobNetworkMode | 'host';
  /** folders the sandbox hides from jobs besides workDir and $HOME (the data dir with the tokens) */
  hidePaths?: string[];
  /**
   * Who jobs run as when the worker runs as root (never root itself): a user name, a uid or
   * uid:gid; default 'nobody'. A worker run as another user runs jobs as that user.
   */
  jobUser?: string;
  /** memory of one job, its /tmp included; default 16 GiB */
  jobMemoryBytes?: number;
  /** processes (threads included) of one job; default 4096 */
  jobPids?: number;
  /** bytes one job may keep in its folder and home; default 50 GiB */
  jobDiskBytes?: number;
  /** size of one job's in-memory /tmp; default 1 GiB */
  jobTmpBytes?: number;
  /** bytes of one TensorBoard file the worker reads; default 1 GiB */
  tailMaxFileBytes?: number;
  /** bytes of all of one job's TensorBoard files the worker reads; default 4 GiB */
  tailMaxJobBytes?: number;
  /** size of the per-account Hugging Face caches (workDir/hf-cache) together; 0 turns them off; default 50 GiB */
  hfCacheMaxBytes?: number;
  /** size of the cached environments (workDir/envs) before least recently used ones go; default 20 GiB */
  envCacheMaxBytes?: number;
}

export interface RunningWorker {
  /** resolves after the first welcome */
  readonly workerId: Promise<string>;
  /** cancels jobs, uploads what they wrote, closes */
  stop(): Promise<void>;
  /**
   * Resolves, with why, when the broker refuses this worker after it had been welcomed (its token
   * revoked or expired): retrying will not help, so whoever runs it should stop it.
   */
  readonly refused: Promise<string>;
}

const DEFAULT_MAX_UNACKED_BYTES = 64 << 20;
/** How much may sit in the socket's send buffer before the pump waits. */
const SOCKET_HIGH_BYTES = 4 << 20;
const MAX_TOMBSTONES = 10_000;

interface JobEntry {
  outbox: EventOutbox;
  /** the broker refused to append (a full disk): nothing of this job is sent before this time */
  holdUntil?: number;
  run?: JobRun;
  done: Promise<void>;
  finished: boolean;
  gpuIndices: number[];
}

export function startWorker(opts: WorkerOptions): RunningWorker {
  const w = new Worker(opts);
  w.start();
  return { workerId: w.workerId, stop: () => w.stop(), refused: w.refused };
}

function defaultLog(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
  if (level === 'debug') return;
  const extra = fields && Object.keys(fields).length ? ' ' + JSON.stringify(fields) : '';
  process.stderr.write(`[worker] ${level}: ${msg}${extra}\n`);
}

class Worker {
  readonly workerId: Promise<string>;
  readonly refused: Promise<string>;
  private resolveRefused!: (why: string) => void;
  private resolveId!: (id: string) => void;
  private rejectId!: (err: Error) => void;
  private id: string | undefined;
  private readonly jobs = new Map<string, JobEntry>();
  private readonly tombstones = new Set<string>();
  private readonly finishedDirs: { id: string; bytes: number }[] = [];
  /** kept folders are measured and removed one job at a time */
  private retiring: Promise<void> = Promise.resolve();
  private readonly log: LogFn;
  private readonly client: BrokerClient;
  private readonly brokerUrls: string[];
  private readonly blobs: BlobCache;
  private readonly hfCache: HfCache | undefined;
  private conn: BrokerConnection | undefined;
  private gpus: GpuInfo[] = [];
  private isGpuHost = false;
  /** the interpreter jobs run with, and what it has (told to the broker in every hello) */
  private python = 'python3';
  private stack: PythonStack | undefined;
  private sampler: TelemetrySampler | undefined;
  private telemetryTimer: NodeJS.Timeout | undefined;
  private pumpTimer: NodeJS.Timeout | undefined;
  private pumpDue = 0;
  private outboxBytes = 0;
  private outputPaused = false;
  private stopping = false;
  private stopPromise: Promise<void> | undefined;
  private welcomedOnce = false;
  private initDone: Promise<void> = Promise.resolve();
  private sandbox: Sandbox = { kind: 'none' };
  /** what the offer says about the sessions' network */
  private network: SessionNetworkKind = 'host';
  private limitBackend: LimitBackend = { kind: 'rlimit', why: 'not yet decided' };
  private readonly limits: JobLimits;
  private envs: EnvCache | undefined;
  /** the NVIDIA driver's version, told in the hello with the Python stack */
  private driver: string | null = null;
  private diskFreeBytes: number | undefined;
  private diskCheckedAt = Date.now();
  private pythonLocation: Promise<PythonLocation> | undefined;

  constructor(private readonly opts: WorkerOptions) {
    const userLog = opts.log ?? defaultLog;
    this.log = (level, msg, fields) => {
      try {
        userLog(level, msg, this.id ? { workerId: this.id, ...fields } : fields);
      } catch {
        /* a logger must never take the worker down */
      }
    };
    this.workerId = new Promise<string>((resolve, reject) => {
      this.resolveId = resolve;
      this.rejectId = reject;
    });
    // Nobody may be waiting for the id; a failed start must not become an unhandled rejection.
    this.workerId.catch(() => undefined);
    this.refused = new Promise<string>((resolve) => (this.resolveRefused = resolve));
    // `--broker URL,URL`: replicas of one broker; HTTP follows the one the socket is connected to.
    this.brokerUrls = brokerUrlList(opts.brokerUrl);
    this.client = new BrokerClient({ url: this.brokerUrls[0]!, token: opts.token });
    this.blobs = new BlobCache(join(opts.workDir, 'blobs'), this.client, opts.maxCacheBytes);
    const hfMax = opts.hfCacheMaxBytes ?? DEFAULT_HF_CACHE_MAX_BYTES;
    this.hfCache = hfMax > 0 ? new HfCache(join(opts.workDir, 'hf-cache'), hfMax, this.log) : undefined;
    this.limits = {
      memoryBytes: opts.jobMemoryBytes ?? DEFAULT_LIMITS.memoryBytes,
      pids: opts.jobPids ?? DEFAULT_LIMITS.pids,
      diskBytes: opts.jobDiskBytes ?? DEFAULT_LIMITS.diskBytes,
      tmpBytes: opts.jobTmpBytes ?? DEFAULT_LIMITS.tmpBytes,
    };
  }

  start(): void {
    this.initDone = this.init().catch((err: Error) => {
      this.log('error', 'worker could not start', { err: err.message });
      this.rejectId(err);
    });
  }

  private async init(): Promise<void> {
    await mkdir(join(this.opts.workDir, 'jobs'), { recursive: true });
    this.id = await this.loadWorkerId();
    void this.hfCache?.evict();
    await this.adoptOldJobDirs();
    const probe = await probeDevices(this.opts.nvidiaSmi ?? 'nvidia-smi');
    this.gpus = probe.gpus;
    this.isGpuHost = probe.isGpuHost;
    if (probe.fallbackReason) this.log('info', 'no GPU found; offering the CPU', { why: probe.fallbackReason, device: probe.gpus[0]?.name });
    else this.log('info', 'found GPUs', { gpus: probe.gpus.map((g) => `${g.index}: ${g.name}`) });
    const picked = await pickPython(this.opts.python, inheritedEnv());
    this.python = picked.python;
    this.stack = picked.stack;
    if (!picked.stack) this.log('warn', `${picked.python} does not run; jobs will fail until it does`);
    else {
      this.log('info', 'jobs run with this Python', { interpreter: picked.python, ...picked.stack });
      if (!picked.stack.kernels) this.log('warn', 'notebooks cannot run: this Python lacks ipykernel and jupyter_client (apt-get install python3-ipykernel python3-jupyter-client, or pip install ipykernel)');
    }
    this.sandbox = await prepareSandbox({
      mode: this.opts.sandbox ?? 'auto',
      bwrap: this.opts.bwrapPath,
      hide: [this.opts.workDir, ...(this.opts.hidePaths ?? [])],
      jobUser: this.opts.jobUser,
      tmpBytes: this.limits.tmpBytes,
      warn: (msg, fields) => this.log('warn', msg, fields),
    });
    if (this.sandbox.kind === 'bwrap') {
      const user = this.sandbox.user;
      this.log('info', 'jobs run sandboxed under bubblewrap', { hidden: this.sandbox.hide, seccomp: !!this.sandbox.seccomp, user: user ? `${user.name} (${user.uid}:${user.gid})` : 'the worker\'s own' });
    } else if (this.sandbox.kind === 'unavailable') this.log('error', 'jobs will fail: no sandbox', { why: this.sandbox.reason });
    if (this.sandbox.kind !== 'unavailable') {
      const network = await prepareSessionNetwork({
        mode: this.opts.jobNetwork ?? 'internet',
        sandboxed: this.sandbox.kind === 'bwrap',
        dir: join(this.opts.workDir, 'net'),
        warn: (msg, fields) => this.log('warn', msg, fields),
      });
      if (this.sandbox.kind === 'bwrap') this.sandbox = { ...this.sandbox, network };
      this.network = network.kind;
      if (network.kind !== 'host') this.log('info', `each session has a network namespace of its own: ${network.kind === 'internet' ? 'the internet through slirp4netns, no host or private addresses' : 'loopback only'}`);
    }
    this.limitBackend = await prepareLimits();
    if (this.isGpuHost) this.driver = await queryDriverVersion(this.opts.nvidiaSmi ?? 'nvidia-smi');
    await this.refreshDiskFree();
    this.envs = new EnvCache({
      dir: join(this.opts.workDir, ENVS_DIR),
      homesDir: join(this.opts.workDir, 'homes'),
      maxBytes: this.opts.envCacheMaxBytes ?? DEFAULT_ENV_CACHE_BYTES,
      python: this.python,
      confinement: () => ({ sandbox: this.sandbox, limits: this.limits, limitBackend: this.limitBackend, isGpuHost: this.isGpuHost }),
      log: this.log,
    });
    // Partial builds of an earlier run (and environments past a lowered cap) go now.
    await this.envs.evict().catch((err: Error) => this.log('warn', 'could not evict environments', { err: err.message }));
    const limits = { memory: formatBytes(this.limits.memoryBytes), pids: this.limits.pids, disk: formatBytes(this.limits.diskBytes), tmp: formatBytes(this.limits.tmpBytes) };
    if (this.limitBackend.kind === 'rlimit') {
      this.log('warn', 'job limits use rlimits, not cgroups: the process limit counts all of this user\'s processes, memory is bounded by address space (not on GPU hosts), disk by file size and the folder watch', { why: this.limitBackend.why, ...limits });
    } else this.log('info', `job limits use ${this.limitBackend.kind}`, limits);
    if (this.stopping) return;
    this.sampler = new TelemetrySampler(this.isGpuHost, this.opts.nvidiaSmi ?? 'nvidia-smi');
    void this.sampler.sample();
    const period = Math.max(100, this.opts.telemetryMs ?? 2000);
    this.telemetryTimer = setInterval(() => void this.sampleTelemetry(), period);
    this.conn = new BrokerConnection({
      brokerUrls: this.brokerUrls,
      onWelcome: (url) => (this.client.url = url),
      token: this.opts.token,
      log: this.log,
      hello: () => this.hello(),
      heartbeat: () => ({ type: 'heartbeat', telemetry: this.sampler?.latest ?? [] }),
      onMessage: (msg) => this.onMessage(msg),
      // Before any welcome, a refusal will not go away by retrying: say so to whoever waits on the id.
      onRefused: (why) => {
        if (!this.welcomedOnce) this.rejectId(new Error(why));
        else {
          this.log('error', `the broker refused this worker: ${why}`);
          this.resolveRefused(why);
        }
      },
    });
    this.conn.start();
  }

  private get statePath(): string {
    return join(this.opts.workDir, 'worker.json');
  }

  /** The id a broker gave this worker before, so leases stay bound across restarts. */
  private async loadWorkerId(): Promise<string | undefined> {
    try {
      const raw = JSON.parse(await readFile(this.statePath, 'utf8')) as { brokerUrl?: unknown; workerId?: unknown };
      if (raw.brokerUrl === this.brokerUrls.join(',') && Id.safeParse(raw.workerId).success) return raw.workerId as string;
    } catch {
      /* first start, or unreadable: the broker will give an id */
    }
    return undefined;
  }

  private async saveWorkerId(workerId: string): Promise<void> {
    const tmp = `${this.statePath}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify({ brokerUrl: this.brokerUrls.join(','), workerId }, null, 2) + '\n', { mode: 0o600 });
    await rename(tmp, this.statePath);
  }

  /**
   * Where the jobs' interpreter lives (for the sandbox's binds), asked once like its versions are;
   * a failure is asked again by the next session.
   */
  private locatePython(): Promise<PythonLocation> {
    this.pythonLocation ??= locatePython(this.python, inheritedEnv());
    this.pythonLocation.catch(() => (this.pythonLocation = undefined));
    return this.pythonLocation;
  }

  /** Free bytes on the disk of the work dir (for the hello; refreshed with the telemetry). */
  private async refreshDiskFree(): Promise<void> {
    try {
      const fs = await statfs(this.opts.workDir);
      this.diskFreeBytes = Math.max(0, Math.floor(Number(fs.bavail) * Number(fs.bsize)));
    } catch {
      this.diskFreeBytes = undefined;
    }
  }

  private hello(): WorkerHello {
    const held: string[] = [];
    for (const [id, j] of this.jobs) if (!j.finished || j.outbox.size > 0) held.push(id);
    return {
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      ...(this.id ? { workerId: this.id } : {}),
      name: (this.opts.name ?? os.hostname()).slice(0, 200) || 'worker',
      hostname: os.hostname().slice(0, 200),
      version: WORKER_VERSION,
      gpus: this.gpus,
      pricePerHour: this.opts.pricePerHour ?? 0,
      ...(this.stack ? { stack: { ...this.stack, driver: this.driver, network: this.network, ...(this.diskFreeBytes !== undefined ? { diskFreeBytes: this.diskFreeBytes } : {}) } } : {}),
      jobs: held.slice(0, 10_000),
    };
  }

  private onMessage(msg: BrokerToWorker): void {
    switch (msg.type) {
      case 'welcome': {
        this.welcomedOnce = true;
        const changed = this.id !== msg.workerId;
        this.id = msg.workerId;
        this.log('info', 'connected to the broker', { heartbeatMs: msg.heartbeatMs });
        const id = msg.workerId;
        // Saved before the id is announced, so whoever waits on workerId finds worker.json written.
        (changed ? this.saveWorkerId(id) : Promise.resolve())
          .catch((err: Error) => this.log('warn', 'could not save worker.json', { err: err.message }))
          .finally(() => this.resolveId(id));
        // Everything not yet durable goes again; the broker drops what it already has.
        for (const j of this.jobs.values()) j.outbox.rewind();
        this.pump();
        return;
      }
      case 'job':
        return this.onJob(msg.job);
      case 'cancel': {
        const j = this.jobs.get(msg.jobId);
        if (!j) return this.log('debug', 'cancel for a job this worker does not hold', { jobId: msg.jobId });
        j.run?.cancel(msg.reason);
        return;
      }
      case 'ack': {
        const j = this.jobs.get(msg.jobId);
        if (!j) return;
        if (j.holdUntil !== undefined && msg.wseq > j.outbox.acked) j.holdUntil = undefined;
        this.outboxBytes -= j.outbox.ack(msg.wseq);
        this.checkBackpressure();
        if (j.finished && j.outbox.size === 0) this.drop(msg.jobId);
        return;
      }
      case 'request': {
        const j = this.jobs.get(msg.jobId);
        if (!j?.run) return this.log('debug', 'a kernel request for a session this worker does not run', { jobId: msg.jobId });
        j.run.request(msg.request);
        return;
      }
      case 'nack': {
        // The broker holds up to ackedWseq and not what came after: send again from there, after
        // retryMs. Never skip ahead: the log must stay gap-free. Meanwhile the outbox fills, and at
        // maxUnackedBytes the jobs' output pauses.
        const j = this.jobs.get(msg.jobId);
        if (!j) return;
        this.outboxBytes -= j.outbox.ack(msg.ackedWseq);
        j.outbox.rewind();
        const wasHeld = j.holdUntil !== undefined;
        j.holdUntil = Date.now() + msg.retryMs;
        if (!wasHeld) this.log('warn', 'the broker did not store events of a job; sending them again', { jobId: msg.jobId, why: msg.reason });
        this.schedulePump(msg.retryMs);
        return;
      }
      case 'forget': {
        const j = this.jobs.get(msg.jobId);
        if (!j) return;
        if (!j.finished) j.run?.cancel('the broker forgot this job');
        this.drop(msg.jobId);
        return;
      }
      case 'error':
        return; // logged by the connection
    }
  }

  private drop(jobId: string): void {
    const j = this.jobs.get(jobId);
    if (!j) return;
    this.outboxBytes -= j.outbox.bytes;
    this.jobs.delete(jobId);
    void j.done.then(() => this.retireJobDir(jobId));
    this.tombstones.add(jobId);
    if (this.tombstones.size > MAX_TOMBSTONES) this.tombstones.delete(this.tombstones.values().next().value as string);
    this.checkBackpressure();
  }

  /**
   * A finished job's outputs are uploaded and its log is durable: its folder now only costs the
   * provider disk. The newest few stay for inspection, together no more than keptJobsMaxBytes
   * (measured when each is kept); older ones go first. One that cannot be measured whole (nested
   * past what a path can name) is not kept.
   */
  private retireJobDir(jobId: string): Promise<void> {
    this.retiring = this.retiring.then(async () => {
      const dir = join(this.opts.workDir, 'jobs', jobId);
      const used = await diskUsage([dir]);
      this.finishedDirs.push({ id: jobId, bytes: used.truncated ? Infinity : used.bytes });
      const keep = Math.max(0, this.opts.keepFinishedJobDirs ?? 10);
      const cap = this.opts.keptJobsMaxBytes ?? DEFAULT_KEPT_JOBS_BYTES;
      let total = this.finishedDirs.reduce((a, d) => a + d.bytes, 0);
      while (this.finishedDirs.length > keep || (this.finishedDirs.length > 0 && total > cap)) {
        const old = this.finishedDirs.shift()!;
        total -= old.bytes;
        if (this.jobs.has(old.id)) continue; // assigned again meanwhile (not expected): leave it be
        await removeTree(join(this.opts.workDir, 'jobs', old.id)).catch((err: Error) =>
          this.log('warn', 'could not remove a finished job folder', { jobId: old.id, err: err.message }),
        );
      }
    });
    return this.retiring;
  }

  /** Folders left by an earlier run of this worker are finished jobs too, oldest first. */
  private async adoptOldJobDirs(): Promise<void> {
    const dir = join(this.opts.workDir, 'jobs');
    const found: { id: string; mtime: number }[] = [];
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (!e.isDirectory() || !Id.safeParse(e.name).success) continue;
      const st = await stat(join(dir, e.name)).catch(() => undefined);
      if (st) found.push({ id: e.name, mtime: st.mtimeMs });
    }
    for (const f of found.sort((a, b) => a.mtime - b.mtime)) void this.retireJobDir(f.id);
  }

  private onJob(a: JobAssignment): void {
    const existing = this.jobs.get(a.jobId);
    const accept = () => this.conn?.sendMessage({ type: 'job-accepted', jobId: a.jobId });
    if (existing) {
      // The broker sent it again (a reconnect or its restart): it keeps running; resend what is missing.
      this.outboxBytes -= existing.outbox.ack(a.ackedWseq);
      existing.outbox.rewind();
      accept();
      this.pump();
      return;
    }
    if (this.tombstones.has(a.jobId)) {
      this.log('warn', 'the broker re-sent a job this worker already finished; ignoring it', { jobId: a.jobId });
      return;
    }
    const outbox = new EventOutbox(a.jobId, a.ackedWseq);
    const entry: JobEntry = { outbox, done: Promise.resolve(), finished: false, gpuIndices: a.gpuIndices };
    this.jobs.set(a.jobId, entry);
    accept();
    if (a.ackedWseq > 0 || this.stopping) {
      // Events exist for it, yet this worker holds no process: it restarted while the job ran.
      // Running it a second time would repeat side effects and interleave two logs, so say so.
      entry.finished = true;
      const reason = this.stopping ? 'the worker is stopping' : 'the worker restarted and no longer has this job';
      this.emit(a.jobId, { type: 'status', status: this.stopping ? 'cancelled' : 'lost', reason });
      return;
    }
    const run = new JobRun(a, {
      jobsDir: join(this.opts.workDir, 'jobs'),
      python: this.python,
      killGraceMs: this.opts.killGraceMs ?? 10_000,
      isGpuHost: this.isGpuHost,
      client: this.client,
      blobs: this.blobs,
      createDecoder: () => new TfEventsDecoder(),
      emit: (body) => this.emit(a.jobId, body),
      log: this.log,
      uploadRetryMs: () => (this.stopping ? 10_000 : 120_000),
      sandbox: this.sandbox,
      homesDir: join(this.opts.workDir, 'homes'),
      limits: this.limits,
      limitBackend: this.limitBackend,
      // Reasons the renter reads name these by placeholders, never by their paths.
      privatePaths: [
        [this.opts.workDir, '<worker>'],
        ...(this.opts.hidePaths ?? []).map((p): [string, string] => [p, '<hidden>']),
        [process.env.HOME || os.homedir(), '<home>'],
      ],
      tailMaxFileBytes: this.opts.tailMaxFileBytes,
      tailMaxJobBytes: this.opts.tailMaxJobBytes,
      hfCache: this.hfCache,
      envs: this.envs,
      locatePython: () => this.locatePython(),
    });
    entry.run = run;
    if (this.outputPaused) run.pauseOutput();
    this.log('info', 'job assigned', { jobId: a.jobId, entry: a.spec.entry, gpuIndices: a.gpuIndices });
    entry.done = run.run().finally(() => {
      entry.finished = true;
    });
  }

  private emit(jobId: string, body: EventBody): void {
    const j = this.jobs.get(jobId);
    if (!j) return; // forgotten meanwhile
    // No event may outgrow the broker's frame limit (the socket would close and the worker resend
    // it forever): big ones are split, others replaced by a notice.
    for (const piece of fitEvent(body, MAX_EVENT_BYTES)) {
      const e = j.outbox.push(piece);
      this.outboxBytes += e.message.length;
    }
    this.checkBackpressure();
    this.pump();
  }

  private checkBackpressure(): void {
    const high = this.opts.maxUnackedBytes ?? DEFAULT_MAX_UNACKED_BYTES;
    if (!this.outputPaused && this.outboxBytes > high) {
      this.outputPaused = true;
      this.log('warn', 'broker is behind; pausing job output until it catches up', { unackedBytes: this.outboxBytes });
      for (const j of this.jobs.values()) j.run?.pauseOutput();
    } else if (this.outputPaused && this.outboxBytes < high / 4) {
      this.outputPaused = false;
      this.log('info', 'resuming job output');
      for (const j of this.jobs.values()) j.run?.resumeOutput();
    }
  }

  private schedulePump(ms: number): void {
    const due = Date.now() + ms;
    if (this.pumpTimer && this.pumpDue <= due) return;
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    this.pumpDue = due;
    this.pumpTimer = setTimeout(() => {
      this.pumpTimer = undefined;
      this.pump();
    }, ms);
  }

  /** Sends unsent events, in order per job, while the socket's buffer has room. */
  private pump(): void {
    const conn = this.conn;
    if (!conn?.ready) return;
    let congested = false;
    let heldFor = Infinity;
    const now = Date.now();
    outer: for (const j of this.jobs.values()) {
      if (j.holdUntil !== undefined && j.holdUntil > now) {
        heldFor = Math.min(heldFor, j.holdUntil - now);
        continue;
      }
      for (let e = j.outbox.peekUnsent(); e; e = j.outbox.peekUnsent()) {
        if (conn.bufferedAmount > SOCKET_HIGH_BYTES) {
          congested = true;
          break outer;
        }
        if (!conn.send(e.message)) return;
        j.outbox.markSent();
      }
    }
    if (congested) this.schedulePump(10);
    else if (heldFor < Infinity) this.schedulePump(heldFor);
  }

  private async sampleTelemetry(): Promise<void> {
    const sampler = this.sampler;
    if (!sampler) return;
    if (Date.now() - this.diskCheckedAt > 60_000) {
      this.diskCheckedAt = Date.now();
      void this.refreshDiskFree();
    }
    const all = await sampler.sample();
    for (const [jobId, j] of this.jobs) {
      if (j.run?.phase !== 'running') continue;
      const mine = this.isGpuHost ? all.filter((t) => j.gpuIndices.includes(t.index)) : all;
      if (mine.length > 0) this.emit(jobId, { type: 'telemetry', gpus: mine });
    }
  }

  stop(): Promise<void> {
    // A second call (Ctrl-C twice) waits for the same stop instead of racing it.
    this.stopPromise ??= this.stopOnce();
    return this.stopPromise;
  }

  private async stopOnce(): Promise<void> {
    this.stopping = true;
    await this.initDone;
    if (this.telemetryTimer) clearInterval(this.telemetryTimer);
    // A job already finishing goes on uploading what it wrote (within uploadRetryMs) before the worker leaves.
    for (const j of this.jobs.values()) j.run?.cancel('the worker is stopping', { finishing: 'continue' });
    await Promise.all([...this.jobs.values()].map((j) => j.done));
    // Give the broker a moment to make the last events durable; what it misses is lost with us.
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && this.conn?.ready && [...this.jobs.values()].some((j) => j.outbox.size > 0)) {
      await new Promise((r) => setTimeout(r, 25));
    }
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    await this.conn?.close();
    if (this.id === undefined) this.rejectId(new Error('the worker stopped before the broker welcomed it'));
    this.log('info', 'worker stopped');
  }
}

/** `http://a:7777,http://b:7777`: the replicas a worker may connect to, in the order it tries them. */
export function brokerUrlList(value: string): string[] {
  const urls = value
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean)
    .map((u) => normalizeBrokerUrl(u));
  if (urls.length === 0) throw new Error('no broker URL given');
  return urls;
}
