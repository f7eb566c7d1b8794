// The broker's side of the worker sockets: registration, job dispatch, cancel, and the event
// stream with acknowledgements. A worker keeps every event until it is acked, so a broker that
// restarts mid-job loses nothing: the worker resends after it reconnects and repeats are dropped.
import type { FastifyBaseLogger } from 'fastify';
import { createHash } from 'node:crypto';
import type { WebSocket } from 'ws';
import { z } from 'zod';
import {
  BrokerToWorker,
  EventBody,
  Id,
  isTerminal,
  PROTOCOL_VERSION,
  WorkerToBroker,
  type GpuTelemetry,
  type JobAssignment,
  type KernelRequest,
} from '../shared/protocol';
import { ArtifactRefused, type Broker, type Principal, type WorkerLink } from './broker';
import type { JobRow } from './event-log';
import type { Secrets } from './secrets';

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

  constructor(
    private readonly broker: Broker,
    private readonly log: FastifyBaseLogger,
    private readonly heartbeatMs: number,
    /** a running job whose worker stays away this long is marked lost */
    private readonly lostAfterMs: number,
    /** the renters' secrets: sent with each dispatch, masked out of each event */
    private readonly secrets?: Secrets,
  ) {
    broker.link = this;
  }

  /** A worker silent this long (no heartbeat, no message) is cut off and treated as away. */
  private get silenceMs(): number {
    return 3 * this.heartbeatMs + 1000;
  }

  isOnline(workerId: string): boolean {
    return this.conns.has(workerId);
  }

  private send(conn: Conn, msg: BrokerToWorker): void {
    if (conn.socket.readyState === conn.socket.OPEN) conn.socket.send(JSON.stringify(BrokerToWorker.parse(msg)));
  }

  dispatch(job: JobRow): void {
    const conn = this.conns.get(job.worker_id);
    if (!conn) return;
    const lease = this.broker.db.prepare('SELECT gpu_indices FROM leases WHERE id = ?').get(job.lease_id) as { gpu_indices: string };
    const assignment: JobAssignment = {
      jobId: job.id,
      leaseId: job.lease_id,
      gpuIndices: JSON.parse(lease.gpu_indices) as number[],
      spec: this.broker.jobSpec(job.id),
      ackedWseq: job.last_wseq,
      secrets: this.secrets?.envFor(job) ?? {},
      // Opaque to the worker, the same for the account's sessions on it, different on another worker.
      cacheKey: createHash('sha256').update(`hf-cache\0${job.worker_id}\0${job.account_id}`).digest('hex').slice(0, 32),
    };
    this.send(conn, { type: 'job', job: assignment });
  }

  cancel(workerId: string, jobId: string, reason: string): void {
    const conn = this.conns.get(workerId);
    if (conn) this.send(conn, { type: 'cancel', jobId, reason });
  }

  request(workerId: string, jobId: string, request: KernelRequest): void {
    const conn = this.conns.get(workerId);
    if (conn) this.send(conn, { type: 'request', jobId, request });
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

    socket.on('message', (raw, isBinary) => {
      if (conn) conn.lastHeard = Date.now();
      if (isBinary) return fail('binary frames are not part of the protocol');
      let data: unknown;
      try {
        data = JSON.parse(raw.toString());
      } catch {
        return this.reject(socket, 'message is not JSON');
      }
      const parsed = WorkerToBroker.safeParse(data);
      if (!parsed.success) {
        const i = parsed.error.issues[0];
        const why = `${i?.path.join('.') || '(root)'}: ${i?.message}`;
        const env = conn && EventEnvelope.safeParse(data);
        const mine = env?.success && this.broker.events.job(env.data.jobId)?.worker_id === conn?.workerId;
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
        return this.reject(socket, `invalid message: ${why}`);
      }
      const msg = parsed.data;
      try {
        if (!conn) {
          if (msg.type !== 'hello') return fail('the first message must be hello');
          if (msg.protocol !== PROTOCOL_VERSION) return fail(`protocol ${msg.protocol} is not supported (broker speaks ${PROTOCOL_VERSION})`, 4426);
          clearTimeout(helloTimer);
          const workerId = this.broker.registerWorker(principal.accountId, msg);
          const old = this.conns.get(workerId);
          if (old) old.socket.close(4409, 'replaced by a newer connection');
          conn = { socket, workerId, accountId: principal.accountId, lastHeard: Date.now() };
          this.conns.set(workerId, conn);
          this.broker.workerBack(workerId);
          this.send(conn, { type: 'welcome', workerId, heartbeatMs: this.heartbeatMs });
          this.log.info({ workerId, gpus: msg.gpus.length }, `worker ${msg.name} connected`);
          this.reconcile(conn, new Set(msg.jobs));
          return;
        }
        switch (msg.type) {
          case 'hello':
            return this.reject(socket, 'hello was already received');
          case 'heartbeat':
            conn.telemetry = msg.telemetry;
            this.broker.touchWorker(conn.workerId);
            return;
          case 'job-accepted':
            this.broker.db.prepare('UPDATE jobs SET accepted_at = COALESCE(accepted_at, ?) WHERE id = ? AND worker_id = ?').run(Date.now(), msg.jobId, conn.workerId);
            return;
          case 'event':
            return this.onEvent(conn, msg.jobId, msg.wseq, msg.body);
        }
      } catch (err) {
        this.log.error({ err, workerId: conn?.workerId }, 'worker message failed');
        this.reject(socket, 'the broker could not handle that message');
      }
    });

    socket.on('close', () => {
      clearTimeout(helloTimer);
      if (conn && this.conns.get(conn.workerId) === conn) {
        this.conns.delete(conn.workerId);
        // Last seen when last heard from, not now: a frozen worker is cut off only later.
        this.broker.touchWorker(conn.workerId, conn.lastHeard);
        this.log.info({ workerId: conn.workerId }, 'worker disconnected');
      }
    });
    socket.on('error', (err) => this.log.warn({ err, workerId: conn?.workerId }, 'worker socket error'));
  }

  private reject(socket: WebSocket, message: string): void {
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify({ type: 'error', message }));
  }

  private onEvent(conn: Conn, jobId: string, wseq: number, body: EventBody): void {
    const job = this.broker.events.job(jobId);
    if (!job || job.worker_id !== conn.workerId) return this.reject(conn.socket, `job ${jobId} is not assigned to this worker`);
    try {
      if (body.type === 'artifact' && !isTerminal(job.status) && wseq === job.last_wseq + 1) {
        try {
          this.broker.recordArtifact(job, body.artifact);
        } catch (err) {
          if (!(err instanceof ArtifactRefused)) throw err;
          // Appended as a notice instead, so the worker moves on and the person sees why.
          body = { type: 'notice', level: 'error', message: err.message };
        }
      }
      // Secret values are masked here, before anything is stored: the worker is a stranger.
      const masked = this.secrets && !isTerminal(job.status) && wseq === job.last_wseq + 1 ? this.secrets.prepare(job, body) : undefined;
      if (masked) {
        for (const b of masked.before) this.broker.events.append(jobId, b);
        body = masked.body;
      }
      const r = this.broker.events.append(jobId, body, wseq);
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
      // The broker could not store it (a full disk, an I/O error): never ack, never skip. The worker
      // holds this event and the ones after it and sends them again; its job's output pauses.
      const full = /full|SQLITE_FULL|ENOSPC/i.test(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
      const reason = full
        ? "the broker's disk is full: this job's output is paused until it can be stored (nothing is lost)"
        : "the broker could not store this job's output: it is paused and will be sent again (nothing is lost)";
      if (this.broker.events.stall(jobId, reason)) this.log.error({ err, workerId: conn.workerId, jobId }, 'cannot store a job event; the worker will send it again');
      this.send(conn, { type: 'nack', jobId, ackedWseq: job.last_wseq, retryMs: STORAGE_RETRY_MS, reason });
    }
  }

  /**
   * After a (re)connect: jobs never taken are sent again; jobs the worker still holds get an ack
   * of what the broker has, and a cancel if one was asked while it was away; jobs it took but no
   * longer knows are lost; jobs it holds that the broker has ended are forgotten.
   */
  private reconcile(conn: Conn, held: Set<string>): void {
    const rows = this.broker.db.prepare("SELECT * FROM jobs WHERE worker_id = ? AND status IN ('queued', 'running')").all(conn.workerId) as JobRow[];
    const open = new Set(rows.map((r) => r.id));
    for (const r of rows) {
      if (held.has(r.id)) {
        this.send(conn, { type: 'ack', jobId: r.id, wseq: r.last_wseq });
        if (r.cancel_reason) this.send(conn, { type: 'cancel', jobId: r.id, reason: r.cancel_reason });
      } else if (r.accepted_at === null) {
        if (r.cancel_reason) this.broker.events.append(r.id, { type: 'status', status: 'cancelled', reason: r.cancel_reason });
        else if (r.dispatched_at !== null) this.dispatch(r);
      } else {
        this.broker.events.append(r.id, { type: 'status', status: 'lost', reason: 'the worker restarted and no longer has this job' });
      }
    }
    // Leases whose job ended while the worker was away start their next one now.
    for (const leaseId of new Set(rows.map((r) => r.lease_id))) this.broker.dispatchNext(leaseId);
    for (const id of held) {
      if (!open.has(id)) {
        const r = this.broker.events.job(id);
        if (r && r.worker_id === conn.workerId) this.send(conn, { type: 'ack', jobId: id, wseq: r.last_wseq });
        this.send(conn, { type: 'forget', jobId: id });
      }
    }
  }

  /**
   * Once a second: cuts off workers gone silent (a SIGSTOPped or frozen host keeps its TCP
   * connection open), stops billing the leases of workers away longer than that, and marks lost the
   * jobs (running, or taken and not started) of workers away longer than lostAfterMs.
   */
  sweep(now = Date.now()): void {
    for (const c of this.conns.values()) {
      if (now - c.lastHeard > this.silenceMs) {
        this.log.warn({ workerId: c.workerId }, `worker silent for ${Math.round((now - c.lastHeard) / 1000)} s; cutting it off`);
        c.socket.terminate();
      }
    }
    const away = this.broker.db
      .prepare("SELECT DISTINCT w.id AS id, w.last_seen AS lastSeen FROM workers w JOIN leases l ON l.worker_id = w.id WHERE l.status = 'active' AND l.away_since IS NULL AND w.last_seen < ?")
      .all(now - this.silenceMs) as { id: string; lastSeen: number }[];
    for (const w of away) if (!this.isOnline(w.id)) this.broker.workerAway(w.id, w.lastSeen, this.lostAfterMs);
    const rows = this.broker.db
      .prepare(
        "SELECT j.* FROM jobs j JOIN workers w ON w.id = j.worker_id WHERE (j.status = 'running' OR (j.status = 'queued' AND j.accepted_at IS NOT NULL)) AND w.last_seen < ?",
      )
      .all(now - this.lostAfterMs) as JobRow[];
    for (const r of rows) {
      if (this.isOnline(r.worker_id)) continue;
      this.broker.events.append(r.id, { type: 'status', status: 'lost', reason: `the worker has been unreachable for ${Math.round(this.lostAfterMs / 1000)} s` });
    }
  }

  telemetryOf(workerId: string): GpuTelemetry[] | undefined {
    return this.conns.get(workerId)?.telemetry;
  }

  closeAll(): void {
    for (const c of this.conns.values()) c.socket.close(1001, 'broker shutting down');
    this.conns.clear();
  }
}
