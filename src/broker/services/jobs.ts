// Jobs and kernel sessions: submission, their turn on a lease, cancellation, artifacts, and what
// each account may read of the blobs. A lease runs one job at a time.
import {
  isNotebookEntry,
  isTerminal,
  JobSpec,
  PythonStack,
  StartKernelBody,
  type Artifact,
  type Job,
  type KernelRequestBody,
  type SubmitJobBody,
} from '../../shared/protocol';
import { outputMatcher } from '../../shared/output-globs';
import { conflict, invalid, notFound } from '../errors';
import type { EventLog } from '../event-log';
import { newId } from '../ids';
import type { BlobRefsRepo } from '../store/blob-refs-repo';
import type { JobsRepo } from '../store/jobs-repo';
import type { JobRow } from '../store/rows';
import type { WorkersRepo } from '../store/workers-repo';
import type { Principal } from './accounts';
import type { LeaseService } from './leases';
import type { LinkRef } from './link';

/** A worker reported an artifact the broker will not take; said in the job's log, never thrown to the worker. */
export class ArtifactRefused extends Error {}

/** The entry of a kernel session's spec (the worker runs its kernel bridge, not a file of the renter's). */
export const KERNEL_ENTRY = '.hearth-kernel';

export class JobService {
  constructor(
    private readonly jobs: JobsRepo,
    private readonly blobRefs: BlobRefsRepo,
    private readonly workers: WorkersRepo,
    private readonly leases: LeaseService,
    private readonly events: EventLog,
    private readonly link: LinkRef,
  ) {
    // A lease runs one job at a time: when one ends, the next queued one goes to the worker.
    events.onEnded = async (job) => {
      await this.dispatchNext(job.lease_id);
      await this.releaseIfDone(job);
      // The last job of an ended lease frees its devices: a lease waiting for them starts now.
      for (const leaseId of await this.leases.startWaitingLeases(job.worker_id)) await this.dispatchNext(leaseId);
    };
    // One job may not fill the broker's disk for everyone: past its cap it is stopped.
    events.onCapped = (job) => this.stopJob(job, "its output passed the broker's limit");
  }

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

  /** The job if it belongs to this account; not found otherwise, so other accounts learn nothing. */
  async jobRow(p: Principal, id: string): Promise<JobRow> {
    const r = await this.jobs.get(id);
    if (!r || r.account_id !== p.accountId) throw notFound(`no job ${id}`);
    return r;
  }

  async submitJob(p: Principal, body: SubmitJobBody): Promise<Job> {
    await this.leases.expireLeases();
    const lease = await this.leases.leaseRow(p, body.leaseId);
    if (lease.status !== 'active') throw conflict('lease_ended', `lease ${lease.id} is ${lease.status}; lease a GPU again`);
    const hashes = [...new Set(body.manifest.files.map((f) => f.sha256))];
    const missing = await this.blobRefs.missingRefs(hashes, p.accountId);
    if (missing.length) throw invalid('missing_blobs', `${missing.length} workspace blob(s) were not uploaded (e.g. ${missing[0]})`);
    const { leaseId, ...specFields } = body;
    const spec = JobSpec.parse(specFields);
    // A notebook run's executed notebook comes back at the notebook's own path, whatever the
    // client asked for (the broker takes artifacts only inside the job's outputs).
    if (isNotebookEntry(spec.entry) && !outputMatcher(spec.outputs)(spec.entry)) spec.outputs = [...spec.outputs, spec.entry];
    const id = newId('job');
    await this.jobs.insert(
      { id, account_id: p.accountId, lease_id: leaseId, worker_id: lease.worker_id, entry: spec.entry, kind: spec.kind, created_at: Date.now() },
      JSON.stringify(spec),
      hashes,
    );
    await this.events.append(id, { type: 'status', status: 'queued' });
    const holder = await this.dispatchNext(leaseId);
    const waiting = holder ? undefined : (await this.leases.leaseById(leaseId))?.waitingFor;
    if (waiting) {
      await this.events.append(id, { type: 'notice', level: 'info', message: `waiting for the lease's ${waiting}` });
    } else if (holder && holder !== id) {
      const ahead = await this.jobs.countOpenOnLease(leaseId, id);
      await this.events.append(id, {
        type: 'notice',
        level: 'info',
        message: `waiting for ${holder} to finish: a lease runs one job at a time (${ahead} ahead of this one)`,
      });
    }
    return this.toJob((await this.jobs.get(id))!);
  }

  /**
   * Starts a kernel session: a session like a job, whose entry is the kernel itself. It takes its
   * turn on the lease like a job and runs until it is stopped, idles out or its lease ends.
   */
  async startKernel(p: Principal, body: StartKernelBody): Promise<Job> {
    const b = StartKernelBody.parse(body);
    const w = await this.leases.workerStack(b.leaseId, p.accountId);
    if (w?.stack && !(JSON.parse(w.stack) as PythonStack).kernels) {
      throw conflict('no_kernels', "this lease's worker cannot run kernels: its Python lacks ipykernel and jupyter_client");
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
  async kernelRequest(p: Principal, jobId: string, body: KernelRequestBody): Promise<{ requestId: string }> {
    const r = await this.jobRow(p, jobId);
    if (r.kind !== 'kernel') throw conflict('not_a_kernel', `${jobId} is a job, not a kernel session`);
    if (isTerminal(r.status)) throw conflict('kernel_ended', `the kernel session ${jobId} has ended (${r.status}${r.reason ? `: ${r.reason}` : ''}); start a new one`);
    if (r.dispatched_at === null) throw conflict('kernel_waiting', `the kernel session ${jobId} waits for its turn on lease ${r.lease_id}`);
    if (!(await this.link.current.isOnline(r.worker_id))) throw conflict('worker_unreachable', "the kernel's worker is not connected right now; try again in a moment");
    const requestId = newId('req');
    if (body.type === 'execute') await this.events.append(jobId, { type: 'kernel', requestId, msgType: 'execute_request', content: { code: body.code } });
    await this.link.current.request(r.worker_id, jobId, { ...body, requestId });
    return { requestId };
  }

  /** A lease taken for one session ends with it, unless another job waits on it meanwhile. */
  private async releaseIfDone(job: JobRow): Promise<void> {
    if (!(await this.jobSpec(job.id)).releaseLease) return;
    const lease = await this.leases.get(job.lease_id);
    if (lease?.status !== 'active') return;
    if ((await this.jobs.openOnLease(job.lease_id)).length === 0) await this.leases.endLease(lease, 'released', Date.now());
  }

  /**
   * Hands the lease's oldest waiting job to its worker when none holds the lease; returns the job
   * that holds it afterwards (undefined when none waits). A job holds its lease from dispatch to
   * its end, so two jobs never share a device (the turn is claimed atomically, across replicas too).
   */
  async dispatchNext(leaseId: string): Promise<string | undefined> {
    // A lease waiting for its devices runs nothing yet (LeaseService.startWaitingLeases starts it).
    if ((await this.leases.get(leaseId))?.waiting_since != null) return undefined;
    const { holder, claimed } = await this.jobs.claimTurn(leaseId, Date.now());
    if (claimed && (await this.link.current.isOnline(claimed.worker_id))) await this.link.current.dispatch(claimed);
    return holder;
  }

  async jobSpec(jobId: string): Promise<JobSpec> {
    const spec = await this.jobs.spec(jobId);
    if (spec === undefined) throw new Error(`no spec for job ${jobId}`);
    return JobSpec.parse(JSON.parse(spec));
  }

  async list(p: Principal): Promise<Job[]> {
    return (await this.jobs.ofAccount(p.accountId, 500)).map((r) => this.toJob(r));
  }

  async cancelJob(p: Principal, id: string): Promise<Job> {
    const r = await this.jobRow(p, id);
    if (!isTerminal(r.status)) await this.stopJob(r, 'cancelled by user');
    return this.toJob((await this.jobs.get(id))!);
  }

  /** Stops the open jobs of a lease that ended. */
  async stopLeaseJobs(leaseId: string, reason: string): Promise<void> {
    for (const j of await this.jobs.openOnLease(leaseId)) await this.stopJob(j, reason);
  }

  /**
   * Stops a job: one the worker never took is cancelled here at once; one it runs is asked to
   * stop, and the worker reports the final status after uploading what the job wrote.
   */
  async stopJob(r: JobRow, reason: string): Promise<void> {
    await this.jobs.setCancelReason(r.id, reason, Date.now());
    const online = await this.link.current.isOnline(r.worker_id);
    // A job not yet accepted may still be on its way to the worker (sent, acceptance in flight):
    // it ends here, and the worker is told too, so it never runs a job the broker has ended.
    if (online && r.dispatched_at !== null) await this.link.current.cancel(r.worker_id, r.id, reason);
    // One the worker took but never started, while the worker is away, ends here too: nothing
    // of it runs, and a worker that returns is told to forget it.
    if (r.accepted_at === null || (!online && r.status === 'queued')) await this.events.append(r.id, { type: 'status', status: 'cancelled', reason });
    // A running job of a worker that is away gets the cancel when it comes back (see WorkerHub.reconcile).
  }

  async artifacts(p: Principal, id: string): Promise<Artifact[]> {
    await this.jobRow(p, id);
    return this.blobRefs.artifacts(id);
  }

  /** The job a worker account may upload artifacts for (assigned to one of its workers, still open). */
  async workerJob(accountId: string, jobId: string): Promise<JobRow> {
    const r = await this.jobs.get(jobId);
    const w = r && (await this.workers.get(r.worker_id));
    if (!r || !w || w.account_id !== accountId) throw notFound(`no job ${jobId} for this worker`);
    // A worker stores bytes under a renter's account only for a job it runs now.
    if (isTerminal(r.status) || r.dispatched_at === null) throw conflict('job_not_open', `job ${jobId} is ${r.status}; nothing more is uploaded for it`);
    return r;
  }

  /** A worker uploaded these bytes for this job: only such blobs may become the job's artifacts. */
  recordJobUpload(job: JobRow, sha: string, size: number): Promise<void> {
    return this.blobRefs.recordJobUpload(job.id, job.account_id, sha, size, Date.now());
  }

  /**
   * Takes an artifact a worker reports, or throws ArtifactRefused. The worker must have uploaded
   * the bytes for this very job (else it could claim any blob whose hash it knows, another
   * account's included), and the path must match the job's output globs (else it could plant a
   * `train.py` in the renter's pull). The refusal reads the same whether or not the hash exists.
   * Returns what was recorded: `mask`'s artifact (see artifact-mask.ts) when given.
   */
  async recordArtifact(job: JobRow, a: Artifact, mask?: (a: Artifact) => Promise<Artifact>): Promise<Artifact> {
    const spec = await this.jobSpec(job.id);
    if (!outputMatcher(spec.outputs)(a.path)) {
      throw new ArtifactRefused(`artifact ${a.path} refused: it matches none of the job's outputs (${spec.outputs.join(', ') || 'none'})`);
    }
    const size = await this.blobRefs.uploadedSize(job.id, a.sha256);
    if (size === undefined || size !== a.size) {
      throw new ArtifactRefused(`artifact ${a.path} refused: the worker did not upload these bytes (sha256 ${a.sha256}) for this job`);
    }
    // Checked as the worker named it; stored as the renter is to see it (secret values masked).
    const stored = mask ? await mask(a) : a;
    await this.blobRefs.recordArtifact(job.id, job.account_id, stored);
    return stored;
  }
}
