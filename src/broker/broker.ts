// The broker's domain: accounts and tokens, workers, offers, leases with per-second metering,
// jobs. Routes translate HTTP to these calls; the worker hub translates the worker socket.
import {
  isTerminal,
  JobSpec,
  type Artifact,
  type CreateLeaseBody,
  type GpuInfo,
  type Job,
  type Lease,
  type LeaseStatus,
  type Offer,
  isNotebookEntry,
  PythonStack,
  StartKernelBody,
  type KernelRequest,
  type KernelRequestBody,
  type SubmitJobBody,
} from '../shared/protocol';
import { outputMatcher } from '../shared/output-globs';
import { EventLog, type JobRow } from './event-log';
import { HttpError } from './http-error';
import { Accounts, type Principal } from './accounts';
import { newId } from './ids';
import type { Db } from './store/db';

export type { Principal } from './accounts';

interface LeaseRow {
  id: string;
  account_id: string;
  worker_id: string;
  gpu_model: string;
  gpu_indices: string;
  count: number;
  price_per_hour: number;
  created_at: number;
  expires_at: number;
  ended_at: number | null;
  status: LeaseStatus;
  /** when its worker went away (billing stops there), null while it is connected */
  away_since: number | null;
  /** time the worker was away before, not billed */
  away_ms: number;
}

/** A worker reported an artifact the broker will not take; said in the job's log, never thrown to the worker. */
export class ArtifactRefused extends Error {}

interface WorkerRow {
  id: string;
  account_id: string;
  name: string;
  hostname: string;
  version: string;
  gpus: string;
  price_per_hour: number;
  last_seen: number;
  stack: string | null;
}

/** How the broker reaches workers; implemented by the worker hub. */
export interface WorkerLink {
  isOnline(workerId: string): boolean;
  dispatch(job: JobRow): void;
  cancel(workerId: string, jobId: string, reason: string): void;
  /** a request for a running kernel session */
  request(workerId: string, jobId: string, request: KernelRequest): void;
}

/** The entry of a kernel session's spec (the worker runs its kernel bridge, not a file of the renter's). */
export const KERNEL_ENTRY = '.hearth-kernel';

export class Broker {
  readonly events: EventLog;
  readonly accounts: Accounts;
  link: WorkerLink = { isOnline: () => false, dispatch: () => {}, cancel: () => {}, request: () => {} };

  constructor(
    readonly db: Db,
    opts: { maxJobEventBytes?: number } = {},
  ) {
    this.events = new EventLog(db, opts.maxJobEventBytes);
    this.accounts = new Accounts(db);
    // A lease runs one job at a time: when one ends, the next queued one goes to the worker.
    this.events.onEnded = (job) => {
      this.dispatchNext(job.lease_id);
      this.releaseIfDone(job);
    };
    // One job may not fill the broker's disk for everyone: past its cap it is stopped.
    this.events.onCapped = (job) => this.stopJob(job, 'its output passed the broker\'s limit');
  }

  // ---------- accounts and tokens ----------
  // They live in accounts.ts; these delegates keep the calls the CLI and tests make.

  bootstrapAdmin(): string | undefined {
    return this.accounts.bootstrapAdmin();
  }

  createAccount(name: string, isAdmin = false): { accountId: string; name: string; token: string } {
    return this.accounts.createAccount(name, isAdmin);
  }

  createToken(accountId: string, kind: 'user' | 'worker', label: string): string {
    return this.accounts.createToken(accountId, kind, label).token;
  }

  authenticate(token: string | undefined): Principal | undefined {
    return this.accounts.authenticate(token);
  }

  // ---------- workers ----------

  /** Registers a worker (or re-registers one that reconnects with its id) and returns its id. */
  registerWorker(
    accountId: string,
    hello: { workerId?: string | undefined; name: string; hostname: string; version: string; gpus: GpuInfo[]; pricePerHour: number; stack?: PythonStack | undefined },
  ): string {
    const now = Date.now();
    // A worker that lost its worker.json (or never keeps one) says hello without an id: it gets its
    // old row back, matched by name and host, instead of one more row each time it connects.
    const known = hello.workerId
      ? (this.db.prepare('SELECT * FROM workers WHERE id = ? AND account_id = ?').get(hello.workerId, accountId) as WorkerRow | undefined)
      : (this.db
          .prepare('SELECT * FROM workers WHERE account_id = ? AND name = ? AND hostname = ? ORDER BY last_seen DESC')
          .all(accountId, hello.name, hello.hostname) as WorkerRow[]).find((w) => !this.link.isOnline(w.id));
    const gpus = JSON.stringify(hello.gpus);
    const stack = hello.stack ? JSON.stringify(hello.stack) : null;
    if (known) {
      this.db
        .prepare('UPDATE workers SET name = ?, hostname = ?, version = ?, gpus = ?, price_per_hour = ?, stack = ?, last_seen = ? WHERE id = ?')
        .run(hello.name, hello.hostname, hello.version, gpus, hello.pricePerHour, stack, now, known.id);
      return known.id;
    }
    const id = newId('wrk');
    this.db
      .prepare(
        'INSERT INTO workers (id, account_id, name, hostname, version, gpus, price_per_hour, stack, last_seen, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(id, accountId, hello.name, hello.hostname, hello.version, gpus, hello.pricePerHour, stack, now, now);
    return id;
  }

  touchWorker(workerId: string, at = Date.now()): void {
    this.db.prepare('UPDATE workers SET last_seen = ? WHERE id = ?').run(at, workerId);
  }

  /**
   * The worker has not been heard from since `since`: its leases stop billing from then on, and
   * the renters of its jobs are told at once (the jobs are marked lost only later, in case it returns).
   */
  workerAway(workerId: string, since: number, lostAfterMs: number): void {
    const marked = this.db
      .prepare("UPDATE leases SET away_since = MAX(created_at, ?) WHERE worker_id = ? AND status = 'active' AND away_since IS NULL")
      .run(since, workerId);
    if (marked.changes === 0) return;
    const jobs = this.db
      .prepare("SELECT id FROM jobs WHERE worker_id = ? AND (status = 'running' OR (status = 'queued' AND accepted_at IS NOT NULL))")
      .all(workerId) as { id: string }[];
    const at = new Date(since).toISOString().slice(11, 19);
    for (const j of jobs) {
      this.events.append(j.id, {
        type: 'notice',
        level: 'warning',
        message: `worker lost: nothing heard from it since ${at} UTC. The lease is not billed while it is away; the job is marked lost if it does not return within ${Math.round(lostAfterMs / 1000)} s`,
      });
    }
  }

  /** The worker is connected again: its leases bill again, and the time away stays unbilled. */
  workerBack(workerId: string, now = Date.now()): void {
    const rows = this.db.prepare("SELECT * FROM leases WHERE worker_id = ? AND away_since IS NOT NULL").all(workerId) as LeaseRow[];
    const stmt = this.db.prepare('UPDATE leases SET away_ms = ?, away_since = NULL WHERE id = ?');
    for (const r of rows) stmt.run(r.away_ms + awayMs(r, Math.min(now, r.ended_at ?? now, r.expires_at)), r.id);
    if (rows.length === 0) return;
    const jobs = this.db.prepare("SELECT id FROM jobs WHERE worker_id = ? AND status = 'running'").all(workerId) as { id: string }[];
    for (const j of jobs) this.events.append(j.id, { type: 'notice', level: 'info', message: 'the worker is back; the lease bills again' });
  }

  private reliability(workerId: string): number {
    const r = this.db
      .prepare(
        "SELECT SUM(CASE WHEN status IN ('succeeded','failed','cancelled','lost') THEN 1 ELSE 0 END) AS done, SUM(CASE WHEN status = 'lost' THEN 1 ELSE 0 END) AS lost FROM jobs WHERE worker_id = ?",
      )
      .get(workerId) as { done: number | null; lost: number | null };
    const done = r.done ?? 0;
    const lost = r.lost ?? 0;
    return (done - lost + 1) / (done + 1);
  }

  private heldIndices(workerId: string): Set<number> {
    this.expireLeases();
    const rows = this.db.prepare("SELECT gpu_indices FROM leases WHERE worker_id = ? AND status = 'active'").all(workerId) as { gpu_indices: string }[];
    return new Set(rows.flatMap((r) => JSON.parse(r.gpu_indices) as number[]));
  }

  offers(): Offer[] {
    // Workers seen in the last day are listed; those not connected now show as offline with none free.
    const workers = this.db.prepare('SELECT * FROM workers WHERE last_seen > ? ORDER BY name').all(Date.now() - 86_400_000) as WorkerRow[];
    const out: Offer[] = [];
    for (const w of workers) {
      const online = this.link.isOnline(w.id);
      if (!online) continue;
      const gpus = JSON.parse(w.gpus) as GpuInfo[];
      const held = this.heldIndices(w.id);
      const byModel = new Map<string, GpuInfo[]>();
      for (const g of gpus) byModel.set(g.name, [...(byModel.get(g.name) ?? []), g]);
      const reliability = this.reliability(w.id);
      for (const [model, list] of byModel) {
        out.push({
          workerId: w.id,
          workerName: w.name,
          gpuModel: model,
          isGpu: list[0]?.isGpu ?? true,
          vramMiB: list[0]?.memoryTotalMiB ?? 0,
          total: list.length,
          free: online ? list.filter((g) => !held.has(g.index)).length : 0,
          pricePerHour: w.price_per_hour,
          reliability,
          online,
          ...(w.stack ? { stack: PythonStack.parse(JSON.parse(w.stack)) } : {}),
        });
      }
    }
    return out;
  }

  // ---------- leases ----------

  private toLease(r: LeaseRow): Lease {
    const w = this.db.prepare('SELECT name FROM workers WHERE id = ?').get(r.worker_id) as { name: string } | undefined;
    const end = Math.min(r.ended_at ?? Date.now(), r.expires_at);
    const billedMs = end - r.created_at - r.away_ms - awayMs(r, end);
    const secondsUsed = Math.max(0, Math.ceil(billedMs / 1000));
    return {
      id: r.id,
      workerId: r.worker_id,
      workerName: w?.name ?? '?',
      gpuModel: r.gpu_model,
      gpuIndices: JSON.parse(r.gpu_indices) as number[],
      count: r.count,
      pricePerHour: r.price_per_hour,
      createdAt: r.created_at,
      expiresAt: r.expires_at,
      endedAt: r.ended_at,
      status: r.status,
      secondsUsed,
      cost: (r.count * r.price_per_hour * secondsUsed) / 3600,
    };
  }

  private leaseRow(p: Principal, id: string): LeaseRow {
    const r = this.db.prepare('SELECT * FROM leases WHERE id = ? AND account_id = ?').get(id, p.accountId) as LeaseRow | undefined;
    if (!r) throw new HttpError(404, 'not_found', `no lease ${id}`);
    return r;
  }

  createLease(p: Principal, body: CreateLeaseBody): Lease {
    this.expireLeases();
    const want = body.gpuModel?.toLowerCase();
    const candidates = this.offers().filter(
      (o) =>
        o.online &&
        o.free >= body.count &&
        (!body.workerId || o.workerId === body.workerId) &&
        (!want || o.gpuModel.toLowerCase().includes(want)),
    );
    candidates.sort((a, b) => a.pricePerHour - b.pricePerHour || b.reliability - a.reliability || b.vramMiB - a.vramMiB);
    const pick = candidates[0];
    if (!pick) {
      const all = this.offers();
      const what = all.length
        ? all.map((o) => `${o.gpuModel} on ${o.workerName}: ${o.free}/${o.total} free`).join('; ')
        : 'no worker is connected';
      throw new HttpError(409, 'no_capacity', `no offer has ${body.count} free ${body.gpuModel ?? 'device(s)'} (${what})`);
    }
    const w = this.db.prepare('SELECT * FROM workers WHERE id = ?').get(pick.workerId) as WorkerRow;
    const held = this.heldIndices(w.id);
    const indices = (JSON.parse(w.gpus) as GpuInfo[])
      .filter((g) => g.name === pick.gpuModel && !held.has(g.index))
      .slice(0, body.count)
      .map((g) => g.index);
    const now = Date.now();
    const id = newId('lease');
    this.db
      .prepare(
        "INSERT INTO leases (id, account_id, worker_id, gpu_model, gpu_indices, count, price_per_hour, created_at, expires_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active')",
      )
      .run(id, p.accountId, w.id, pick.gpuModel, JSON.stringify(indices), body.count, w.price_per_hour, now, now + Math.round(body.hours * 3_600_000));
    return this.lease(p, id);
  }

  leases(p: Principal): Lease[] {
    this.expireLeases();
    return (this.db.prepare('SELECT * FROM leases WHERE account_id = ? ORDER BY created_at DESC').all(p.accountId) as LeaseRow[]).map((r) => this.toLease(r));
  }

  lease(p: Principal, id: string): Lease {
    this.expireLeases();
    return this.toLease(this.leaseRow(p, id));
  }

  renewLease(p: Principal, id: string, hours: number): Lease {
    this.expireLeases();
    const r = this.leaseRow(p, id);
    if (r.status !== 'active') throw new HttpError(409, 'lease_ended', `lease ${id} is ${r.status}; lease again`);
    this.db.prepare('UPDATE leases SET expires_at = ? WHERE id = ?').run(Math.max(r.expires_at, Date.now()) + Math.round(hours * 3_600_000), id);
    return this.lease(p, id);
  }

  releaseLease(p: Principal, id: string): Lease {
    this.expireLeases();
    const r = this.leaseRow(p, id);
    if (r.status === 'active') this.endLease(r, 'released', Date.now());
    return this.lease(p, id);
  }

  /** Ends every lease whose time is up; runs on a timer and before anything reads leases. */
  expireLeases(now = Date.now()): void {
    const due = this.db.prepare("SELECT * FROM leases WHERE status = 'active' AND expires_at <= ?").all(now) as LeaseRow[];
    for (const r of due) this.endLease(r, 'expired', r.expires_at);
  }

  private endLease(r: LeaseRow, status: 'released' | 'expired', at: number, jobReason?: string): void {
    this.db.prepare('UPDATE leases SET status = ?, ended_at = ? WHERE id = ? AND status = ?').run(status, at, r.id, 'active');
    const jobs = this.db.prepare("SELECT * FROM jobs WHERE lease_id = ? AND status IN ('queued', 'running')").all(r.id) as JobRow[];
    for (const j of jobs) this.stopJob(j, jobReason ?? (status === 'expired' ? 'lease expired' : 'lease released'));
  }

  /** Any account's lease as metered now (for the spend controls, which watch every account). */
  leaseById(id: string): Lease | undefined {
    const r = this.db.prepare('SELECT * FROM leases WHERE id = ?').get(id) as LeaseRow | undefined;
    return r && this.toLease(r);
  }

  /** Ends an active lease now on the broker's own account (a cap, a limit, idleness); its jobs stop with `jobReason`. */
  endActiveLease(id: string, jobReason: string, at = Date.now()): boolean {
    const r = this.db.prepare("SELECT * FROM leases WHERE id = ? AND status = 'active'").get(id) as LeaseRow | undefined;
    if (!r) return false;
    this.endLease(r, 'released', at, jobReason);
    return true;
  }

  // ---------- jobs ----------

  toJob(r: JobRow): Job {
    return {
      id: r.id,
      kind: r.kind,
      leaseId: r.lease_id,
      workerId: r.worker_id,
      entry: r.entry,
      status: r.status,
      createdAt: r.created_at,
      startedAt: r.started_at,
      endedAt: r.ended_at,
      exitCode: r.exit_code,
      reason: r.reason,
      lastSeq: r.last_seq,
    };
  }

  /** The job if it belongs to this account; 404 otherwise, so other accounts learn nothing. */
  jobRow(p: Principal, id: string): JobRow {
    const r = this.events.job(id);
    if (!r || r.account_id !== p.accountId) throw new HttpError(404, 'not_found', `no job ${id}`);
    return r;
  }

  submitJob(p: Principal, body: SubmitJobBody): Job {
    this.expireLeases();
    const lease = this.leaseRow(p, body.leaseId);
    if (lease.status !== 'active') throw new HttpError(409, 'lease_ended', `lease ${lease.id} is ${lease.status}; lease a GPU again`);
    const hashes = [...new Set(body.manifest.files.map((f) => f.sha256))];
    const owned = this.db.prepare('SELECT 1 FROM blob_refs WHERE sha256 = ? AND account_id = ?');
    const missing = hashes.filter((h) => !owned.get(h, p.accountId));
    if (missing.length) {
      throw new HttpError(400, 'missing_blobs', `${missing.length} workspace blob(s) were not uploaded (e.g. ${missing[0]})`);
    }
    const { leaseId, ...specFields } = body;
    const spec = JobSpec.parse(specFields);
    // A notebook run's executed notebook comes back at the notebook's own path, whatever the
    // client asked for (the broker takes artifacts only inside the job's outputs).
    if (isNotebookEntry(spec.entry) && !outputMatcher(spec.outputs)(spec.entry)) spec.outputs = [...spec.outputs, spec.entry];
    const id = newId('job');
    this.db.transaction(() => {
      this.db
        .prepare("INSERT INTO jobs (id, account_id, lease_id, worker_id, entry, kind, status, created_at, dispatched_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, NULL)")
        .run(id, p.accountId, leaseId, lease.worker_id, spec.entry, spec.kind, Date.now());
      this.db.prepare('INSERT INTO job_specs (job_id, spec) VALUES (?, ?)').run(id, JSON.stringify(spec));
      const link = this.db.prepare('INSERT OR IGNORE INTO job_blobs (job_id, sha256) VALUES (?, ?)');
      for (const h of hashes) link.run(id, h);
    })();
    this.events.append(id, { type: 'status', status: 'queued' });
    const holder = this.dispatchNext(leaseId);
    if (holder && holder !== id) {
      const ahead = this.db.prepare("SELECT COUNT(*) AS n FROM jobs WHERE lease_id = ? AND status IN ('queued', 'running') AND id != ?").get(leaseId, id) as { n: number };
      this.events.append(id, {
        type: 'notice',
        level: 'info',
        message: `waiting for ${holder} to finish: a lease runs one job at a time (${ahead.n} ahead of this one)`,
      });
    }
    return this.toJob(this.events.job(id)!);
  }

  /**
   * Starts a kernel session: a session like a job, whose entry is the kernel itself. It takes its
   * turn on the lease like a job and runs until it is stopped, idles out or its lease ends.
   */
  startKernel(p: Principal, body: StartKernelBody): Job {
    const b = StartKernelBody.parse(body);
    const w = this.db.prepare('SELECT w.stack AS stack FROM leases l JOIN workers w ON w.id = l.worker_id WHERE l.id = ? AND l.account_id = ?').get(b.leaseId, p.accountId) as
      | { stack: string | null }
      | undefined;
    if (w?.stack && !(JSON.parse(w.stack) as PythonStack).kernels) {
      throw new HttpError(409, 'no_kernels', "this lease's worker cannot run kernels: its Python lacks ipykernel and jupyter_client");
    }
    return this.submitJob(p, {
      leaseId: b.leaseId,
      kind: 'kernel',
      entry: KERNEL_ENTRY,
      idleMinutes: b.idleMinutes,
      releaseLease: b.releaseLease,
      args: [],
      env: b.env,
      outputs: b.outputs,
      logdir: b.logdir,
      ...(b.requirements ? { requirements: b.requirements } : {}),
      manifest: b.manifest,
    });
  }

  /**
   * Passes a request to a kernel session's worker and returns its id. An execute is logged first
   * (execute_request, with its code), so a client that comes back later knows what each request
   * ran; the kernel's answers follow in the same log, carrying the same id.
   */
  kernelRequest(p: Principal, jobId: string, body: KernelRequestBody): { requestId: string } {
    const r = this.jobRow(p, jobId);
    if (r.kind !== 'kernel') throw new HttpError(409, 'not_a_kernel', `${jobId} is a job, not a kernel session`);
    if (isTerminal(r.status)) throw new HttpError(409, 'kernel_ended', `the kernel session ${jobId} has ended (${r.status}${r.reason ? `: ${r.reason}` : ''}); start a new one`);
    if (r.dispatched_at === null) throw new HttpError(409, 'kernel_waiting', `the kernel session ${jobId} waits for its turn on lease ${r.lease_id}`);
    if (!this.link.isOnline(r.worker_id)) throw new HttpError(409, 'worker_unreachable', 'the kernel\'s worker is not connected right now; try again in a moment');
    const requestId = newId('req');
    if (body.type === 'execute') this.events.append(jobId, { type: 'kernel', requestId, msgType: 'execute_request', content: { code: body.code } });
    this.link.request(r.worker_id, jobId, { ...body, requestId });
    return { requestId };
  }

  /** A lease taken for one session ends with it, unless another job waits on it meanwhile. */
  private releaseIfDone(job: JobRow): void {
    if (!this.jobSpec(job.id).releaseLease) return;
    const lease = this.db.prepare("SELECT * FROM leases WHERE id = ? AND status = 'active'").get(job.lease_id) as LeaseRow | undefined;
    if (!lease) return;
    const open = this.db.prepare("SELECT 1 FROM jobs WHERE lease_id = ? AND status IN ('queued', 'running') LIMIT 1").get(job.lease_id);
    if (!open) this.endLease(lease, 'released', Date.now());
  }

  /**
   * Hands the lease's oldest waiting job to its worker when none holds the lease; returns the job
   * that holds it afterwards (undefined when none waits). A job holds its lease from dispatch to
   * its end, so two jobs never share a device.
   */
  dispatchNext(leaseId: string): string | undefined {
    const lease = this.db.prepare('SELECT status FROM leases WHERE id = ?').get(leaseId) as { status: LeaseStatus } | undefined;
    if (lease?.status !== 'active') return undefined;
    const holder = this.db
      .prepare("SELECT id FROM jobs WHERE lease_id = ? AND status IN ('queued', 'running') AND dispatched_at IS NOT NULL LIMIT 1")
      .get(leaseId) as { id: string } | undefined;
    if (holder) return holder.id;
    const next = this.db
      .prepare("SELECT * FROM jobs WHERE lease_id = ? AND status = 'queued' AND dispatched_at IS NULL ORDER BY rowid LIMIT 1")
      .get(leaseId) as JobRow | undefined;
    if (!next) return undefined;
    this.db.prepare('UPDATE jobs SET dispatched_at = ? WHERE id = ?').run(Date.now(), next.id);
    if (this.link.isOnline(next.worker_id)) this.link.dispatch(this.events.job(next.id)!);
    return next.id;
  }

  jobSpec(jobId: string): JobSpec {
    const r = this.db.prepare('SELECT spec FROM job_specs WHERE job_id = ?').get(jobId) as { spec: string } | undefined;
    if (!r) throw new Error(`no spec for job ${jobId}`);
    return JobSpec.parse(JSON.parse(r.spec));
  }

  jobs(p: Principal): Job[] {
    return (this.db.prepare('SELECT * FROM jobs WHERE account_id = ? ORDER BY created_at DESC LIMIT 500').all(p.accountId) as JobRow[]).map((r) => this.toJob(r));
  }

  cancelJob(p: Principal, id: string): Job {
    const r = this.jobRow(p, id);
    if (!isTerminal(r.status)) this.stopJob(r, 'cancelled by user');
    return this.toJob(this.events.job(id)!);
  }

  /**
   * Stops a job: one the worker never took is cancelled here at once; one it runs is asked to
   * stop, and the worker reports the final status after uploading what the job wrote.
   */
  stopJob(r: JobRow, reason: string): void {
    this.db.prepare('UPDATE jobs SET cancel_reason = COALESCE(cancel_reason, ?) WHERE id = ?').run(reason, r.id);
    const online = this.link.isOnline(r.worker_id);
    // A job not yet accepted may still be on its way to the worker (sent, acceptance in flight):
    // it ends here, and the worker is told too, so it never runs a job the broker has ended.
    if (online && r.dispatched_at !== null) this.link.cancel(r.worker_id, r.id, reason);
    // One the worker took but never started, while the worker is away, ends here too: nothing
    // of it runs, and a worker that returns is told to forget it.
    if (r.accepted_at === null || (!online && r.status === 'queued')) this.events.append(r.id, { type: 'status', status: 'cancelled', reason });
    // A running job of a worker that is away gets the cancel when it comes back (see WorkerHub.reconcile).
  }

  artifacts(p: Principal, id: string): Artifact[] {
    this.jobRow(p, id);
    return this.db.prepare('SELECT path, sha256, size FROM artifacts WHERE job_id = ? ORDER BY path').all(id) as Artifact[];
  }

  // ---------- blobs ----------

  hasBlobRef(accountId: string, sha: string): boolean {
    return !!this.db.prepare('SELECT 1 FROM blob_refs WHERE sha256 = ? AND account_id = ?').get(sha, accountId);
  }

  /** A worker account may read a blob that belongs to a job assigned to one of its workers. */
  workerMayRead(accountId: string, sha: string): boolean {
    return !!this.db
      .prepare('SELECT 1 FROM job_blobs jb JOIN jobs j ON j.id = jb.job_id JOIN workers w ON w.id = j.worker_id WHERE jb.sha256 = ? AND w.account_id = ? LIMIT 1')
      .get(sha, accountId);
  }

  recordBlob(sha: string, size: number, accountId: string): void {
    this.db.transaction(() => {
      this.db.prepare('INSERT OR IGNORE INTO blobs (sha256, size, created_at) VALUES (?, ?, ?)').run(sha, size, Date.now());
      this.db.prepare('INSERT OR IGNORE INTO blob_refs (sha256, account_id) VALUES (?, ?)').run(sha, accountId);
    })();
  }

  /** recordBlob for many blobs in one transaction (one commit, not one per small file). */
  recordBlobs(blobs: { sha256: string; size: number }[], accountId: string): void {
    this.db.transaction(() => {
      for (const b of blobs) this.recordBlob(b.sha256, b.size, accountId);
    })();
  }

  blobSize(sha: string): number | undefined {
    return (this.db.prepare('SELECT size FROM blobs WHERE sha256 = ?').get(sha) as { size: number } | undefined)?.size;
  }

  /** The job a worker account may upload artifacts for (assigned to one of its workers, still open). */
  workerJob(accountId: string, jobId: string): JobRow {
    const r = this.events.job(jobId);
    const w = r && (this.db.prepare('SELECT account_id FROM workers WHERE id = ?').get(r.worker_id) as { account_id: string } | undefined);
    if (!r || !w || w.account_id !== accountId) throw new HttpError(404, 'not_found', `no job ${jobId} for this worker`);
    // A worker stores bytes under a renter's account only for a job it runs now.
    if (isTerminal(r.status) || r.dispatched_at === null) throw new HttpError(409, 'job_not_open', `job ${jobId} is ${r.status}; nothing more is uploaded for it`);
    return r;
  }

  /** A worker uploaded these bytes for this job: only such blobs may become the job's artifacts. */
  recordJobUpload(job: JobRow, sha: string, size: number): void {
    this.db.transaction(() => {
      this.recordBlob(sha, size, job.account_id);
      this.db.prepare('INSERT OR IGNORE INTO job_uploads (job_id, sha256) VALUES (?, ?)').run(job.id, sha);
    })();
  }

  /**
   * Takes an artifact a worker reports, or throws ArtifactRefused. The worker must have uploaded
   * the bytes for this very job (else it could claim any blob whose hash it knows, another
   * account's included), and the path must match the job's output globs (else it could plant a
   * `train.py` in the renter's pull). The refusal reads the same whether or not the hash exists.
   */
  recordArtifact(job: JobRow, a: Artifact): void {
    const spec = this.jobSpec(job.id);
    if (!outputMatcher(spec.outputs)(a.path)) {
      throw new ArtifactRefused(`artifact ${a.path} refused: it matches none of the job's outputs (${spec.outputs.join(', ') || 'none'})`);
    }
    const uploaded = this.db.prepare('SELECT b.size AS size FROM job_uploads u JOIN blobs b ON b.sha256 = u.sha256 WHERE u.job_id = ? AND u.sha256 = ?').get(job.id, a.sha256) as { size: number } | undefined;
    if (!uploaded || uploaded.size !== a.size) {
      throw new ArtifactRefused(`artifact ${a.path} refused: the worker did not upload these bytes (sha256 ${a.sha256}) for this job`);
    }
    this.db.transaction(() => {
      this.db.prepare('INSERT OR REPLACE INTO artifacts (job_id, path, sha256, size) VALUES (?, ?, ?, ?)').run(job.id, a.path, a.sha256, a.size);
      this.db.prepare('INSERT OR IGNORE INTO blob_refs (sha256, account_id) VALUES (?, ?)').run(a.sha256, job.account_id);
      this.db.prepare('INSERT OR IGNORE INTO job_blobs (job_id, sha256) VALUES (?, ?)').run(job.id, a.sha256);
    })();
  }
}

/** Milliseconds of r's current time away that fall before `end` (0 while its worker is connected). */
function awayMs(r: LeaseRow, end: number): number {
  return r.away_since === null ? 0 : Math.max(0, end - Math.max(r.away_since, r.created_at));
}
