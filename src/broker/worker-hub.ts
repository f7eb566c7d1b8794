// The broker's side of the worker sockets: registration, job dispatch, cancel, and the event
// stream with acknowledgements. A worker keeps every event until it is acked, so a broker that
// restarts mid-job loses nothing: the worker resends after it reconnects and repeats are dropped.
// With several replicas a worker's socket lives on one of them: what another replica wants sent
// to it (a job, a cancel, a kernel request) comes as a store command to the replica holding it.
import type { FastifyBaseLogger } from 'fastify';
import { createHash } from 'node:crypto';
import type { RawData, WebSocket } from 'ws';
import { z } from 'zod';
import {
  BrokerToWorker,
  EventBody,
  Id,
  isTerminal,
  PROTOCOL_VERSION,
  WorkerToBroker,
  type Artifact,
  type GpuTelemetry,
  type JobAssignment,
  type KernelRequest,
} from '../shared/protocol';
import { ArtifactRefused, type Broker, type Principal, type WorkerLink } from './broker';
import type { JobRow } from './event-log';
import { maskArtifact } from './artifact-mask';
import type { Secrets } from './secrets';
import type { BlobStore } from './store/blob-store';
import type { WorkerCommand } from './store/store';
import { plausibleTelemetry } from './plausible-telemetry';

interface Conn {
  socket: WebSocket;
  workerId: string;
  accountId: string;
  telemetry?: GpuTelemetry[];
  /** when anything last came from the worker: a frozen worker keeps its TCP connection open */
  lastHeard: number;
}

/** An event whose envelope is sound but whose body may not be: its job takes the blame, not the socket. */
const EventEnvelope = z.object({ type: z.literal('event'), jobId: Id, wseq: z.number().int().min(1), body: z.unknown() });

/** How soon a worker whose append failed (a full disk) sends again. */
const STORAGE_RETRY_MS = 1000;

export class WorkerHub implements WorkerLink {
  private readonly conns = new Map<string, Conn>();
  /** set by closeAll: the store closes next, so sockets closing now record nothing */
  private closing = false;

  constructor(
    private readonly broker: Broker,
    private readonly log: FastifyBaseLogger,
    private readonly heartbeatMs: number,
    /** a running job whose worker stays away this long is marked lost */
    private readonly lostAfterMs: number,
    /** the renters' secrets: sent with each dispatch, masked out of each event */
    private readonly secrets?: Secrets,
    /** where artifacts' bytes are: a notebook's outputs are masked into a new blob (artifact-mask.ts) */
    private readonly blobs?: BlobStore,
  ) {
    broker.link = this;
    broker.store.onCommand((cmd) => {
      if (this.conns.has(cmd.workerId)) {
        this.onCommand(cmd).catch((err: unknown) => this.log.error({ err, workerId: cmd.workerId }, 'worker command failed'));
      }
    });
  }

  private get store() {
    return this.broker.store;
  }

  /** A worker silent this long (no heartbeat, no message) is cut off and treated as away. */
  private get silenceMs(): number {
    return 3 * this.heartbeatMs + 1000;
  }

  /** Connected here, or to another replica that heard from it lately. */
  async isOnline(workerId: string): Promise<boolean> {
    return this.conns.has(workerId) || (await this.elsewhere(workerId)) !== undefined;
  }

  private async elsewhere(workerId: string): Promise<string | undefined> {
    if (this.store.kind === 'sqlite') return undefined;
    const r = await this.store.workers.replicaOf(workerId, Date.now() - this.silenceMs);
    return r === this.store.replicaId ? undefined : r;
  }

  private send(conn: Conn, msg: BrokerToWorker): void {
    if (conn.socket.readyState === conn.socket.OPEN) conn.socket.send(JSON.stringify(BrokerToWorker.parse(msg)));
  }

  /** Sends here when the socket is here, else asks the replica that holds it. */
  private async relay(cmd: WorkerCommand): Promise<void> {
    if (this.conns.has(cmd.workerId)) return this.onCommand(cmd);
    const to = await this.elsewhere(cmd.workerId);
    if (to) await this.store.command(to, cmd);
  }

  private async onCommand(cmd: WorkerCommand): Promise<void> {
    const conn = this.conns.get(cmd.workerId);
    if (!conn) return;
    switch (cmd.kind) {
      case 'dispatch': {
        const job = await this.broker.events.job(cmd.jobId);
        if (job && job.worker_id === cmd.workerId) await this.sendJob(conn, job);
        return;
      }
      case 'cancel':
        return this.send(conn, { type: 'cancel', jobId: cmd.jobId, reason: cmd.data ?? '' });
      case 'request':
        return this.send(conn, { type: 'request', jobId: cmd.jobId, request: JSON.parse(cmd.data ?? '{}') as KernelRequest });
    }
  }

  private async sendJob(conn: Conn, job: JobRow): Promise<void> {
    const lease = await this.store.leases.get(job.lease_id);
    if (!lease) return;
    const assignment: JobAssignment = {
      jobId: job.id,
      leaseId: job.lease_id,
      gpuIndices: JSON.parse(lease.gpu_indices) as number[],
      spec: await this.broker.jobSpec(job.id),
      ackedWseq: job.last_wseq,
      // Read from the database at each dispatch: another replica may have set one a moment ago.
      secrets: (await this.secrets?.envFor(job)) ?? {},
      // Opaque to the worker, the same for the account's sessions on it, different on another worker.
      cacheKey: createHash('sha256').update(`hf-cache\0${job.worker_id}\0${job.account_id}`).digest('hex').slice(0, 32),
    };
    this.send(conn, { type: 'job', job: assignment });
  }

  dispatch(job: JobRow): Promise<void> {
    return this.relay({ workerId: job.worker_id, kind: 'dispatch', jobId: job.id });
  }

  cancel(workerId: string, jobId: string, reason: string): Promise<void> {
    return this.relay({ workerId, kind: 'cancel', jobId, data: reason });
  }

  request(workerId: string, jobId: string, request: KernelRequest): Promise<void> {
    return this.relay({ workerId, kind: 'request', jobId, data: JSON.stringify(request) });
  }

  /** Handles one worker socket from its first message to its close. */
  accept(socket: WebSocket, principal: Principal): void {
    let conn: Conn | undefined;
    const fail = (message: string, code = 4400) => {
      this.log.warn({ workerId: conn?.workerId }, `worker socket: ${message}`);
      try {
        socket.send(JSON.stringify({ type: 'error', message }));
      } finally {
        socket.close(code, message.slice(0, 120));
      }
    };
    // A peer that connects but never says hello is not kept around.
    const helloTimer = setTimeout(() => conn || fail('no hello within 10 s'), 10_000);

    // One socket's messages are handled one after another, each to its end (its commit) before the
    // next begins: that keeps a worker's events, and the acks sent for them, in order.
    let queue = Promise.resolve();
    socket.on('message', (raw, isBinary) => {
      if (conn) conn.lastHeard = Date.now();
      queue = queue.then(() =>
        this.onMessage(socket, principal, raw, isBinary, () => conn, (c) => (conn = c), fail, helloTimer).catch((err: unknown) => {
          this.log.error({ err, workerId: conn?.workerId }, 'worker message failed');
          this.reject(socket, 'the broker could not handle that message');
        }),
      );
    });

    socket.on('close', () => {
      clearTimeout(helloTimer);
      if (conn && this.conns.get(conn.workerId) === conn) {
        const c = conn;
        this.conns.delete(c.workerId);
        // Last seen when last heard from, not now: a frozen worker is cut off only later.
        if (!this.closing) void queue
          .then(async () => {
            await this.broker.touchWorker(c.workerId, c.lastHeard);
            if (!this.conns.has(c.workerId)) await this.store.workers.clearReplica(c.workerId, this.store.replicaId);
          })
          .catch((err: unknown) => this.log.warn({ err, workerId: c.workerId }, 'could not record a worker leaving'));
        this.log.info({ workerId: c.workerId }, 'worker disconnected');
      }
    });
    socket.on('error', (err) => this.log.warn({ err, workerId: conn?.workerId }, 'worker socket error'));
  }

  private async onMessage(
    socket: WebSocket,
    principal: Principal,
    raw: RawData,
    isBinary: boolean,
    getConn: () => Conn | undefined,
    setConn: (c: Conn) => void,
    fail: (message: string, code?: number) => void,
    helloTimer: NodeJS.Timeout,
  ): Promise<void> {
    const conn = getConn();
    if (socket.readyState !== socket.OPEN) return;
    if (isBinary) return fail('binary frames are not part of the protocol');
    let data: unknown;
    try {
      data = JSON.parse(rawText(raw));
    } catch {
      return this.reject(socket, 'message is not JSON');
    }
    const parsed = WorkerToBroker.safeParse(data);
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      const why = `${i?.path.join('.') || '(root)'}: ${i?.message}`;
      const env = conn && EventEnvelope.safeParse(data);
      const mine = env?.success && (await this.broker.events.job(env.data.jobId))?.worker_id === conn?.workerId;
      if (conn && env?.success && mine) {
        // One job's poison (a hostile event file fed to the tailer, say) must not wedge the
        // worker's other jobs: the event is replaced by a notice in its own job and acked.
        const kind = typeof (env.data.body as { type?: unknown } | null)?.type === 'string' ? String((env.data.body as { type: string }).type).slice(0, 40) : 'unknown';
        return this.onEvent(conn, env.data.jobId, env.data.wseq, {
          type: 'notice',
          level: 'error',
          message: `the worker sent an invalid event (${kind}: ${why.replace(/^body\./, '').slice(0, 500)}); it was dropped`,
        });
      }
      // A worker whose hello is refused (a name with control characters, say) is told why and let go.
      if (!conn) return fail(`invalid hello: ${why}`);
      return this.reject(socket, `invalid message: ${why}`);
    }
    const msg = parsed.data;
    if (!conn) {
      if (msg.type !== 'hello') return fail('the first message must be hello');
      if (msg.protocol !== PROTOCOL_VERSION) return fail(`protocol ${msg.protocol} is not supported (broker speaks ${PROTOCOL_VERSION})`, 4426);
      clearTimeout(helloTimer);
      const workerId = await this.broker.registerWorker(principal.accountId, msg);
      const old = this.conns.get(workerId);
      if (old) old.socket.close(4409, 'replaced by a newer connection');
      const c: Conn = { socket, workerId, accountId: principal.accountId, lastHeard: Date.now() };
      setConn(c);
      this.conns.set(workerId, c);
      await this.store.workers.setReplica(workerId, this.store.replicaId);
      await this.broker.workerBack(workerId);
      this.send(c, { type: 'welcome', workerId, heartbeatMs: this.heartbeatMs });
      this.log.info({ workerId, gpus: msg.gpus.length }, `worker ${msg.name} connected`);
      await this.reconcile(c, new Set(msg.jobs));
      return;
    }
    switch (msg.type) {
      case 'hello':
        return this.reject(socket, 'hello was already received');
      case 'heartbeat':
        conn.telemetry = msg.telemetry && plausibleTelemetry(msg.telemetry);
        return this.broker.touchWorker(conn.workerId);
      case 'job-accepted':
        return this.store.jobs.accept(msg.jobId, conn.workerId, Date.now());
      case 'event':
        return this.onEvent(conn, msg.jobId, msg.wseq, msg.body);
    }
  }

  private reject(socket: WebSocket, message: string): void {
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify({ type: 'error', message }));
  }

  private async onEvent(conn: Conn, jobId: string, wseq: number, body: EventBody): Promise<void> {
    let job: JobRow | undefined;
    try {
      job = await this.broker.events.job(jobId);
      if (!job || job.worker_id !== conn.workerId) return this.reject(conn.socket, `job ${jobId} is not assigned to this worker`);
      if (body.type === 'telemetry') body = { ...body, gpus: plausibleTelemetry(body.gpus) };
      if (body.type === 'artifact' && !isTerminal(job.status) && wseq === job.last_wseq + 1) {
        try {
          // Stored with secret values masked out of its path, and out of a notebook's outputs.
          const { secrets, blobs } = this;
          const row = job;
          const mask = secrets && blobs ? (a: Artifact) => maskArtifact(secrets.maskerOf(row), a, blobs, (sha, size) => this.broker.recordJobUpload(row, sha, size)) : undefined;
          body = { ...body, artifact: await this.broker.recordArtifact(job, body.artifact, mask) };
        } catch (err) {
          if (!(err instanceof ArtifactRefused)) throw err;
          // Appended as a notice instead, so the worker moves on and the person sees why.
          body = { type: 'notice', level: 'error', message: err.message };
        }
      }
      // Secret values are masked here, before anything is stored: the worker is a stranger.
      const masked = this.secrets && !isTerminal(job.status) && wseq === job.last_wseq + 1 ? this.secrets.prepare(job, body) : undefined;
      if (masked) {
        for (const b of masked.before) await this.broker.events.append(jobId, b);
        body = masked.body;
      }
      const r = await this.broker.events.append(jobId, body, wseq);
      switch (r.kind) {
        case 'appended':
          masked?.commit();
          this.broker.events.unstall(jobId);
          this.send(conn, { type: 'ack', jobId, wseq });
          if (body.type === 'status' && isTerminal(body.status)) this.send(conn, { type: 'forget', jobId });
          return;
        case 'repeat':
        case 'capped':
          return this.send(conn, { type: 'ack', jobId, wseq });
        case 'ended':
          // Nothing more goes into an ended job's log; the worker may let go of it.
          this.send(conn, { type: 'ack', jobId, wseq });
          return this.send(conn, { type: 'forget', jobId });
        case 'gap':
          return this.send(conn, { type: 'nack', jobId, ackedWseq: r.lastWseq, retryMs: 0, reason: `event ${wseq} skips ahead of ${r.lastWseq}` });
      }
    } catch (err) {
      // The broker could not store it (a full disk, an I/O error, the database out of reach): never
      // ack, never skip. The worker holds this event and the ones after it and sends them again;
      // its job's output pauses.
      const full = /full|SQLITE_FULL|ENOSPC|53100/i.test(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
      const reason = full
        ? "the broker's disk is full: this job's output is paused until it can be stored (nothing is lost)"
        : "the broker could not store this job's output: it is paused and will be sent again (nothing is lost)";
      if (this.broker.events.stall(jobId, reason)) this.log.error({ err, workerId: conn.workerId, jobId }, 'cannot store a job event; the worker will send it again');
      this.send(conn, { type: 'nack', jobId, ackedWseq: job ? job.last_wseq : wseq - 1, retryMs: STORAGE_RETRY_MS, reason });
    }
  }

  /**
   * After a (re)connect: jobs never taken are sent again; jobs the worker still holds get an ack
   * of what the broker has, and a cancel if one was asked while it was away; jobs it took but no
   * longer knows are lost; jobs it holds that the broker has ended are forgotten.
   */
  private async reconcile(conn: Conn, held: Set<string>): Promise<void> {
    const rows = await this.store.jobs.openOnWorker(conn.workerId);
    const open = new Set(rows.map((r) => r.id));
    for (const r of rows) {
      if (held.has(r.id)) {
        this.send(conn, { type: 'ack', jobId: r.id, wseq: r.last_wseq });
        if (r.cancel_reason) this.send(conn, { type: 'cancel', jobId: r.id, reason: r.cancel_reason });
      } else if (r.accepted_at === null) {
        if (r.cancel_reason) await this.broker.events.append(r.id, { type: 'status', status: 'cancelled', reason: r.cancel_reason });
        else if (r.dispatched_at !== null) await this.sendJob(conn, r);
      } else {
        await this.broker.events.append(r.id, { type: 'status', status: 'lost', reason: 'the worker restarted and no longer has this job' });
      }
    }
    // Leases whose job ended while the worker was away start their next one now.
    for (const leaseId of new Set(rows.map((r) => r.lease_id))) await this.broker.dispatchNext(leaseId);
    for (const id of held) {
      if (!open.has(id)) {
        const r = await this.broker.events.job(id);
        if (r && r.worker_id === conn.workerId) this.send(conn, { type: 'ack', jobId: id, wseq: r.last_wseq });
        this.send(conn, { type: 'forget', jobId: id });
      }
    }
  }

  /** Once a second, on every replica: cuts off its own workers gone silent (a SIGSTOPped or frozen host keeps its TCP connection open). */
  cutSilent(now = Date.now()): void {
    for (const c of this.conns.values()) {
      if (now - c.lastHeard > this.silenceMs) {
        this.log.warn({ workerId: c.workerId }, `worker silent for ${Math.round((now - c.lastHeard) / 1000)} s; cutting it off`);
        c.socket.terminate();
      }
    }
  }

  /**
   * Once a second, on one replica at a time: stops billing the leases of workers away longer than
   * the silence limit, and marks lost the jobs (running, or taken and not started) of workers away
   * longer than lostAfterMs.
   */
  async sweep(now = Date.now()): Promise<void> {
    for (const w of await this.store.workers.silentWithActiveLeases(now - this.silenceMs)) {
      if (!(await this.isOnline(w.id))) await this.broker.workerAway(w.id, w.lastSeen, this.lostAfterMs);
    }
    for (const r of await this.store.jobs.takenBySilentWorkers(now - this.lostAfterMs)) {
      if (await this.isOnline(r.worker_id)) continue;
      await this.broker.events.append(r.id, { type: 'status', status: 'lost', reason: `the worker has been unreachable for ${Math.round(this.lostAfterMs / 1000)} s` });
    }
  }

  telemetryOf(workerId: string): GpuTelemetry[] | undefined {
    return this.conns.get(workerId)?.telemetry;
  }

  /** How many worker sockets this replica holds. */
  get size(): number {
    return this.conns.size;
  }

  closeAll(): void {
    this.closing = true;
    for (const c of this.conns.values()) c.socket.close(1001, 'broker shutting down');
    this.conns.clear();
  }
}

function rawText(raw: RawData): string {
  if (Array.isArray(raw)) return Buffer.concat(raw).toString();
  return Buffer.isBuffer(raw) ? raw.toString() : Buffer.from(raw).toString();
}
