// GET /v1/jobs/:id/events?from=N&follow=1 — the job's event log as NDJSON. Lines are read from the
// database page by page and written with backpressure, so a slow reader holds no events in memory.
import type { FastifyInstance } from 'fastify';
import { once, setMaxListeners } from 'node:events';
import { z } from 'zod';
import { Id, isTerminal } from '../../shared/protocol';
import type { Broker } from '../broker';
import { parse, principal, requireAuth } from './auth';

const Params = z.object({ id: Id });
const Query = z
  .object({
    from: z.coerce.number().int().min(0).default(0),
    follow: z.enum(['0', '1', 'true', 'false']).optional(),
  })
  .strict();

export function eventRoutes(app: FastifyInstance, broker: Broker, shutdown: AbortSignal, pingMs: number): void {
  app.get('/v1/jobs/:id/events', { onRequest: requireAuth(broker, 'user') }, async (req, reply) => {
    const { id } = parse(Params, req.params, 'job id');
    const q = parse(Query, req.query, 'query');
    const follow = q.follow === '1' || q.follow === 'true';
    const who = principal(req);
    await broker.jobRow(who, id); // 404 for a job of another account

    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    const gone = new AbortController();
    const onClose = () => gone.abort();
    res.on('close', onClose);
    shutdown.addEventListener('abort', onClose, { once: true });
    const signal = AbortSignal.any([gone.signal, shutdown]);
    setMaxListeners(0, signal);

    let last = q.from;
    let toldStall: string | null = null;
    try {
      for (;;) {
        if (signal.aborted) break;
        const rows = await broker.events.readRaw(id, last, 1000);
        if (rows.length) {
          let chunk = '';
          for (const r of rows) chunk += `{"kind":"event","event":{"seq":${r.seq},"ts":${r.ts},"body":${r.body}}}\n`;
          last = rows[rows.length - 1]!.seq;
          if (!res.write(chunk)) await Promise.race([once(res, 'drain'), once(signal, 'abort')]);
          continue;
        }
        const job = (await broker.events.job(id))!;
        if (isTerminal(job.status) && last >= job.last_seq) {
          res.write(JSON.stringify({ kind: 'end', lastSeq: job.last_seq, status: job.status }) + '\n');
          broker.events.forgetTail(id);
          break;
        }
        if (!follow) break;
        // A job whose output the broker cannot store right now says why, once per change.
        const stall = broker.events.stalled(id) ?? null;
        if (stall !== toldStall) {
          toldStall = stall;
          res.write(JSON.stringify({ kind: 'stalled', message: stall }) + '\n');
        }
        await broker.events.waitFor(id, last, pingMs, signal);
        // A token revoked or expired while following stops the stream it opened.
        if (!(await broker.accounts.isValid(who.tokenId))) break;
        if ((await broker.events.job(id))!.last_seq <= last && !signal.aborted && broker.events.stalled(id) === (toldStall ?? undefined)) {
          res.write(JSON.stringify({ kind: 'ping', lastSeq: last }) + '\n');
        }
      }
    } catch (err) {
      req.log.warn({ err, jobId: id }, 'event stream failed');
    } finally {
      shutdown.removeEventListener('abort', onClose);
      res.off('close', onClose);
      res.end();
    }
  });
}
