// The broker's domain, put together: accounts and tokens, workers, offers and leases, jobs, the
// event log, over one Store (SQLite or PostgreSQL). Each service takes its collaborators in its
// constructor; this class wires them and keeps the calls the routes, the CLI and tests make.
// Routes translate HTTP to these calls; the worker hub translates the worker socket.
import type { Artifact, CreateLeaseBody, Job, KernelRequestBody, Lease, Offer, StartKernelBody, SubmitJobBody, TokenInfo } from '../shared/protocol';
import { EventLog, type JobRow } from './event-log';
import { AccountService, type Principal } from './services/accounts';
import { JobService } from './services/jobs';
import { LeaseService, type Hello } from './services/leases';
import { LinkRef, type WorkerLink } from './services/link';
import type { Store } from './store/store';

export type { Principal } from './services/accounts';
export { ArtifactRefused, KERNEL_ENTRY } from './services/jobs';
export type { WorkerLink } from './services/link';

export class Broker {
  readonly events: EventLog;
  readonly accounts: AccountService;
  readonly leaseService: LeaseService;
  readonly jobService: JobService;
  private readonly linkRef = new LinkRef();

  constructor(
    readonly store: Store,
    opts: { maxJobEventBytes?: number } = {},
  ) {
    this.events = new EventLog(store, opts.maxJobEventBytes);
    this.accounts = new AccountService(store.accounts);
    this.leaseService = new LeaseService(store.workers, store.leases, store.jobs, this.events, this.linkRef, (leaseId, reason) =>
      this.jobService.stopLeaseJobs(leaseId, reason),
    );
    this.jobService = new JobService(store.jobs, store.blobRefs, store.workers, this.leaseService, this.events, this.linkRef);
  }

  /** How the services reach workers; the worker hub sets it. */
  get link(): WorkerLink {
    return this.linkRef.current;
  }

  set link(l: WorkerLink) {
    this.linkRef.current = l;
  }

  // ---------- accounts and tokens ----------

  bootstrapAdmin(): Promise<string | undefined> {
    return this.accounts.bootstrapAdmin();
  }

  createAccount(name: string, isAdmin = false): Promise<{ accountId: string; name: string; token: string }> {
    return this.accounts.createAccount(name, isAdmin);
  }

  async createToken(accountId: string, kind: 'user' | 'worker', label: string): Promise<string> {
    return (await this.accounts.createToken(accountId, kind, label)).token;
  }

  authenticate(token: string | undefined): Promise<Principal | undefined> {
    return this.accounts.authenticate(token);
  }

  tokens(accountId: string): Promise<TokenInfo[]> {
    return this.accounts.list(accountId);
  }

  // ---------- workers, offers, leases ----------

  registerWorker(accountId: string, hello: Hello): Promise<string> {
    return this.leaseService.registerWorker(accountId, hello);
  }

  touchWorker(workerId: string, at = Date.now()): Promise<void> {
    return this.leaseService.touchWorker(workerId, at);
  }

  workerAway(workerId: string, since: number, lostAfterMs: number): Promise<void> {
    return this.leaseService.workerAway(workerId, since, lostAfterMs);
  }

  workerBack(workerId: string, now = Date.now()): Promise<void> {
    return this.leaseService.workerBack(workerId, now);
  }

  offers(): Promise<Offer[]> {
    return this.leaseService.offers();
  }

  createLease(p: Principal, body: CreateLeaseBody): Promise<Lease> {
    return this.leaseService.createLease(p, body);
  }

  leases(p: Principal): Promise<Lease[]> {
    return this.leaseService.leases(p);
  }

  lease(p: Principal, id: string): Promise<Lease> {
    return this.leaseService.lease(p, id);
  }

  renewLease(p: Principal, id: string, hours: number): Promise<Lease> {
    return this.leaseService.renewLease(p, id, hours);
  }

  releaseLease(p: Principal, id: string): Promise<Lease> {
    return this.leaseService.releaseLease(p, id);
  }

  expireLeases(now = Date.now()): Promise<void> {
    return this.leaseService.expireLeases(now);
  }

  /** Any account's lease as metered now (for the spend controls, which watch every account). */
  leaseById(id: string): Promise<Lease | undefined> {
    return this.leaseService.leaseById(id);
  }

  /** Ends an active lease now on the broker's own account (a cap, a limit, idleness); its jobs stop with `jobReason`. */
  endActiveLease(id: string, jobReason: string, at = Date.now()): Promise<boolean> {
    return this.leaseService.endActiveLease(id, jobReason, at);
  }

  // ---------- jobs ----------

  toJob(r: JobRow): Job {
    return this.jobService.toJob(r);
  }

  jobRow(p: Principal, id: string): Promise<JobRow> {
    return this.jobService.jobRow(p, id);
  }

  submitJob(p: Principal, body: SubmitJobBody): Promise<Job> {
    return this.jobService.submitJob(p, body);
  }

  startKernel(p: Principal, body: StartKernelBody): Promise<Job> {
    return this.jobService.startKernel(p, body);
  }

  kernelRequest(p: Principal, jobId: string, body: KernelRequestBody): Promise<{ requestId: string }> {
    return this.jobService.kernelRequest(p, jobId, body);
  }

  dispatchNext(leaseId: string): Promise<string | undefined> {
    return this.jobService.dispatchNext(leaseId);
  }

  jobSpec(jobId: string) {
    return this.jobService.jobSpec(jobId);
  }

  jobs(p: Principal): Promise<Job[]> {
    return this.jobService.list(p);
  }

  cancelJob(p: Principal, id: string): Promise<Job> {
    return this.jobService.cancelJob(p, id);
  }

  stopJob(r: JobRow, reason: string): Promise<void> {
    return this.jobService.stopJob(r, reason);
  }

  artifacts(p: Principal, id: string): Promise<Artifact[]> {
    return this.jobService.artifacts(p, id);
  }

  workerJob(accountId: string, jobId: string): Promise<JobRow> {
    return this.jobService.workerJob(accountId, jobId);
  }

  recordJobUpload(job: JobRow, sha: string, size: number): Promise<void> {
    return this.jobService.recordJobUpload(job, sha, size);
  }

  recordArtifact(job: JobRow, a: Artifact, mask?: (a: Artifact) => Promise<Artifact>): Promise<Artifact> {
    return this.jobService.recordArtifact(job, a, mask);
  }

  // ---------- blob metadata (the bytes are the blob store's) ----------

  hasBlobRef(accountId: string, sha: string): Promise<boolean> {
    return this.store.blobRefs.hasRef(sha, accountId);
  }

  /** Of `hashes`, those the account holds no reference to. */
  missingBlobRefs(accountId: string, hashes: string[]): Promise<string[]> {
    return this.store.blobRefs.missingRefs(hashes, accountId);
  }

  /** A worker account may read a blob that belongs to a job assigned to one of its workers. */
  workerMayRead(accountId: string, sha: string): Promise<boolean> {
    return this.store.blobRefs.workerMayRead(accountId, sha);
  }

  recordBlob(sha: string, size: number, accountId: string): Promise<void> {
    return this.store.blobRefs.record(sha, size, accountId, Date.now());
  }

  /** recordBlob for many blobs in one transaction (one commit, not one per small file). */
  recordBlobs(blobs: { sha256: string; size: number }[], accountId: string): Promise<void> {
    return this.store.blobRefs.recordMany(blobs, accountId, Date.now());
  }

  blobSize(sha: string): Promise<number | undefined> {
    return this.store.blobRefs.size(sha);
  }
}
