// Builds the broker (database, blob store, routes, timers) without listening, so tests can use a
// real port or app.inject alike. server.ts does the listening and the graceful shutdown.
import websocket from '@fastify/websocket';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { setMaxListeners } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { chmodSync, closeSync, mkdirSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { Broker } from './broker';
import { toHttpError } from './http-error';
import { registerJsonParser } from './json-body';
import { apiRoutes } from './routes/api';
import { blobRoutes } from './routes/blobs';
import { eventRoutes } from './routes/events';
import { secretRoutes } from './routes/secrets';
import { workerSocketRoute } from './routes/worker-socket';
import { loadSecretsKey } from './secret-box';
import { Secrets } from './secrets';
import { Ledger } from './ledger';
import { ledgerRoutes } from './routes/ledger';
import { Spend } from './spend';
import { openBlobStore } from './store/open-blob-store';
import { openStore } from './store/store';
import { WorkerHub } from './worker-hub';

export const BrokerOptions = z.object({
  dataDir: z.string().min(1),
  /** a postgres:// URL: the store shared by every replica; none: SQLite in the data dir */
  database: z.string().min(1).optional(),
  version: z.string().default('0.0.0'),
  heartbeatMs: z.number().int().positive().default(5000),
  lostAfterMs: z.number().int().positive().default(120_000),
  pingMs: z.number().int().positive().default(15_000),
  maxBlobBytes: z.number().int().positive().default(64 * 1024 ** 3),
  /** bytes of output (log, scalars, telemetry) one job's event log may hold */
  maxJobEventBytes: z.number().int().positive().default(8 * 1024 ** 3),
  /** an upload that brings fewer than uploadMinBytes in this long is cut and its temp file removed */
  uploadStallMs: z.number().int().positive().default(30_000),
  uploadMinBytes: z.number().int().min(1).default(16 * 1024),
  /** how often leases are checked against their cost caps, their account's limit and their idle release */
  meterMs: z.number().int().positive().default(1000),
  /** a cancelled session's worker has this long to stop it; then the lease taken for it ends (billing stops) */
  cancelGraceMs: z.number().int().positive().default(30_000),
  /** `open`: renters' balances may go below zero (a broker of one's own); `prepaid`: a lease needs credits (ledger.ts) */
  credit: z.enum(['open', 'prepaid']).default('open'),
  /** the secret a payment provider signs its webhook posts with; else HEARTH_PAYMENT_WEBHOOK_SECRET; none: no webhook */
  paymentWebhookSecret: z.string().min(16).optional(),
  /** the operator's secrets key (32 bytes, hex or base64); else HEARTH_SECRETS_KEY, else <dataDir>/secrets.key */
  secretsKeyFile: z.string().min(1).optional(),
  /** where blob bytes live: `folder` (<dataDir>/blobs) or `s3://bucket?endpoint=…` (see open-blob-store.ts) */
  blobs: z.string().default('folder'),
});
export type BrokerOptions = z.input<typeof BrokerOptions>;

/** The body limit of every JSON route that does not set its own. */
export const JSON_BODY_LIMIT = 256 * 1024;

/**
 * The data dir holds the database, the blobs and the admin token: only the broker's user may
 * read it, whatever its mode was before (a folder made by hand or by an older hearth is 0755).
 */
function makePrivate(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700);
  const db = join(dataDir, 'broker.db');
  // SQLite gives its -wal and -shm files the mode of the database file, so that is set first.
  closeSync(openSync(db, 'a', 0o600));
  for (const f of readdirSync(dataDir)) {
    if (f.startsWith('broker.db') || f === 'admin-token' || f === 'worker-token' || f === 'config.json' || f === 'secrets.key') chmodSync(join(dataDir, f), 0o600);
  }
}

/**
 * A refused request whose body is still arriving (no token, too large) is not parsed, and not
 * read either: the socket stops reading once the reply is out, so TCP flow control holds the
 * sender back at no cost to us, and it is cut a moment later. Closing at once would reset the
 * connection with the reply perhaps unread; letting Node read and discard the rest, its default
 * for a kept-alive connection, costs as much CPU as taking the 64 MB.
 */
/** how long a refused sender has to read the reply before its connection is cut */
const LINGER_MS = 1000;

function closeAfterReply(req: IncomingMessage, res: ServerResponse): void {
  res.once('finish', () => {
    // After Node's own 'finish' work, which resumes the request to discard its body on the next tick.
    setImmediate(() => {
      if (req.complete || req.socket.destroyed) return;
      const socket = req.socket;
      socket.pause();
      // The HTTP parser reads the socket's handle directly: pausing the stream alone does not stop it.
      (socket as unknown as { _handle?: { readStop?: () => void } })._handle?.readStop?.();
      const t = setTimeout(() => socket.destroy(), LINGER_MS);
      t.unref();
      socket.once('close', () => clearTimeout(t));
    });
  });
}

export interface BrokerApp {
  app: FastifyInstance;
  broker: Broker;
  /** the admin token when this start created the first account (shown once), else undefined */
  adminToken: string | undefined;
  /** the ledger (balances, escrow, earnings) */
  ledger: Ledger;
  /** one metering pass now (caps, limits, the ledger), as the metering timer runs it */
  meter(now?: number): Promise<void>;
  close(): Promise<void>;
}

export async function buildBroker(options: BrokerOptions, logger: FastifyServerOptions['logger'] = false): Promise<BrokerApp> {
  const opts = BrokerOptions.parse(options);
  makePrivate(opts.dataDir);
  const store = await openStore({ dataDir: opts.dataDir, database: opts.database });
  let blobs: Awaited<ReturnType<typeof openBlobStore>>;
  let secrets: Secrets;
  let adminToken: string | undefined;
  const broker = new Broker(store, { maxJobEventBytes: opts.maxJobEventBytes });
  try {
    blobs = await openBlobStore(opts.blobs, opts.dataDir, { stallMs: opts.uploadStallMs, minBytes: opts.uploadMinBytes });
    try {
      const key = loadSecretsKey({ dataDir: opts.dataDir, keyFile: opts.secretsKeyFile });
      secrets = await Secrets.open(store.secrets, key.key, key.source);
      adminToken = await broker.bootstrapAdmin();
    } catch (err) {
      blobs.close?.();
      throw err;
    }
  } catch (err) {
    await store.close();
    throw err;
  }
  const onEnded = broker.events.onEnded;
  broker.events.onEnded = async (job) => {
    secrets.forget(job.id);
    await onEnded(job);
  };

  const app = Fastify({
    logger,
    // Followers hold connections open; on close they are cut rather than waited for.
    forceCloseConnections: true,
    // JSON routes take small bodies; the few that need more (job submission, blob uploads) say so.
    bodyLimit: JSON_BODY_LIMIT,
  });
  app.decorateRequest('principal', null);
  registerJsonParser(app);
  app.setErrorHandler((err, req, reply) => {
    if (!req.raw.complete) {
      // Fastify asks for `connection: close` on a body it stopped reading; closeAfterReply does
      // that once the reply can have been read.
      reply.removeHeader('connection');
      closeAfterReply(req.raw, reply.raw);
    }
    const http = toHttpError(err);
    if (http) {
      return reply.code(http.status).send({ error: http.code, message: http.message, ...(http.issues ? { issues: http.issues } : {}) });
    }
    const e = err as { statusCode?: number; code?: string; message: string };
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      // Fastify's own 4xx (bad JSON, body too large) say what is wrong and reveal nothing inside.
      return reply.code(e.statusCode).send({ error: e.code ?? 'bad_request', message: e.message });
    }
    req.log.error({ err }, 'request failed');
    return reply.code(500).send({ error: 'internal', message: 'internal error; see the broker log' });
  });
  app.setNotFoundHandler((req, reply) => {
    if (!req.raw.complete) closeAfterReply(req.raw, reply.raw);
    return reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url}` });
  });

  const shutdown = new AbortController();
  // Every open follower listens for shutdown; dozens are normal, not a leak.
  setMaxListeners(0, shutdown.signal);
  const hub = new WorkerHub(broker, app.log, opts.heartbeatMs, opts.lostAfterMs, secrets, blobs);
  await app.register(websocket, { options: { maxPayload: 16 * 1024 * 1024 } });
  const ledger = new Ledger(broker, store.ledger, opts.credit, opts.meterMs);
  broker.leaseService.beforeLease = (q) => ledger.hold(q);
  const spend = new Spend(broker, store.spend, opts.cancelGraceMs, ledger);
  apiRoutes(app, broker, spend, opts.version);
  ledgerRoutes(app, broker, ledger, opts.paymentWebhookSecret ?? (process.env.HEARTH_PAYMENT_WEBHOOK_SECRET || undefined));
  blobRoutes(app, broker, blobs, opts.maxBlobBytes);
  secretRoutes(app, broker, secrets);
  eventRoutes(app, broker, shutdown.signal, opts.pingMs);
  const workerSockets = workerSocketRoute(app, broker, hub);

  // Once a second. Each replica cuts off its own silent sockets and closes its sockets whose token
  // ended; the shared work (lease expiry, away and lost workers) runs on one replica at a time
  // and at most once a second across them (store.runExclusive).
  let ticking = false;
  const tick = async () => {
    hub.cutSilent();
    await workerSockets.closeExpired((tokenId) => broker.accounts.isValid(tokenId));
    await store.runExclusive('sweep', 900, async () => {
      await broker.expireLeases();
      await hub.sweep();
    });
  };
  const timer = setInterval(() => {
    if (ticking) return;
    ticking = true;
    tick()
      .catch((err: unknown) => app.log.error({ err }, 'sweep failed'))
      .finally(() => (ticking = false));
  }, 1000);
  timer.unref();
  // Metering is shared work too: one replica a period checks every lease (store.runExclusive).
  let metering = false;
  const meter = setInterval(() => {
    if (metering) return;
    metering = true;
    store
      .runExclusive('meter', Math.max(1, Math.floor(opts.meterMs * 0.9)), () => spend.tick())
      .catch((err: unknown) => app.log.error({ err }, 'metering failed'))
      .finally(() => (metering = false));
  }, opts.meterMs);
  meter.unref();

  let closed = false;
  return {
    app,
    broker,
    adminToken,
    ledger,
    meter: (now?: number) => spend.tick(now),
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      clearInterval(meter);
      shutdown.abort();
      hub.closeAll();
      await app.close();
      // A tick in progress finishes before the store closes under it.
      while (ticking || metering) await new Promise((r) => setTimeout(r, 20));
      await store.close();
      blobs.close?.();
    },
  };
}
