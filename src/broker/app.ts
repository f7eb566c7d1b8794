// Builds the broker (database, blob store, routes, timers) without listening, so tests can use a
// real port or app.inject alike. server.ts does the listening and the graceful shutdown.
import websocket from '@fastify/websocket';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { setMaxListeners } from 'node:events';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { Broker } from './broker';
import { HttpError } from './http-error';
import { apiRoutes } from './routes/api';
import { blobRoutes } from './routes/blobs';
import { eventRoutes } from './routes/events';
import { workerSocketRoute } from './routes/worker-socket';
import { BlobStore } from './store/blob-store';
import { openDb } from './store/db';
import { WorkerHub } from './worker-hub';

export const BrokerOptions = z.object({
  dataDir: z.string().min(1),
  version: z.string().default('0.0.0'),
  heartbeatMs: z.number().int().positive().default(5000),
  lostAfterMs: z.number().int().positive().default(120_000),
  pingMs: z.number().int().positive().default(15_000),
  maxBlobBytes: z.number().int().positive().default(64 * 1024 ** 3),
  /** bytes of output (log, scalars, telemetry) one job's event log may hold */
  maxJobEventBytes: z.number().int().positive().default(8 * 1024 ** 3),
});
export type BrokerOptions = z.input<typeof BrokerOptions>;

export interface BrokerApp {
  app: FastifyInstance;
  broker: Broker;
  /** the admin token when this start created the first account (shown once), else undefined */
  adminToken: string | undefined;
  close(): Promise<void>;
}

export async function buildBroker(options: BrokerOptions, logger: FastifyServerOptions['logger'] = false): Promise<BrokerApp> {
  const opts = BrokerOptions.parse(options);
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const db = openDb(join(opts.dataDir, 'broker.db'));
  const blobs = new BlobStore(join(opts.dataDir, 'blobs'));
  const broker = new Broker(db, { maxJobEventBytes: opts.maxJobEventBytes });
  const adminToken = broker.bootstrapAdmin();

  const app = Fastify({
    logger,
    // Followers hold connections open; on close they are cut rather than waited for.
    forceCloseConnections: true,
    bodyLimit: 4 * 1024 * 1024,
  });
  app.decorateRequest('principal', null);
  app.setErrorHandler((err, req, reply) => {
    if (err instanceof HttpError) {
      return reply.code(err.status).send({ error: err.code, message: err.message, ...(err.issues ? { issues: err.issues } : {}) });
    }
    const e = err as { statusCode?: number; code?: string; message: string };
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      // Fastify's own 4xx (bad JSON, body too large) say what is wrong and reveal nothing inside.
      return reply.code(e.statusCode).send({ error: e.code ?? 'bad_request', message: e.message });
    }
    req.log.error({ err }, 'request failed');
    return reply.code(500).send({ error: 'internal', message: 'internal error; see the broker log' });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url}` }));

  const shutdown = new AbortController();
  // Every open follower listens for shutdown; dozens are normal, not a leak.
  setMaxListeners(0, shutdown.signal);
  const hub = new WorkerHub(broker, app.log, opts.heartbeatMs, opts.lostAfterMs);
  await app.register(websocket, { options: { maxPayload: 16 * 1024 * 1024 } });
  apiRoutes(app, broker, opts.version);
  blobRoutes(app, broker, blobs, opts.maxBlobBytes);
  eventRoutes(app, broker, shutdown.signal, opts.pingMs);
  workerSocketRoute(app, broker, hub);

  const timer = setInterval(() => {
    try {
      broker.expireLeases();
      hub.sweep();
    } catch (err) {
      app.log.error({ err }, 'sweep failed');
    }
  }, 1000);
  timer.unref();

  let closed = false;
  return {
    app,
    broker,
    adminToken,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      shutdown.abort();
      hub.closeAll();
      await app.close();
      db.close();
    },
  };
}
