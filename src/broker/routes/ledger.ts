// The ledger's routes: an account's balance, earnings and postings; an admin's grants, overdrafts
// and fee; and a payment provider's webhook, signed with a secret the broker's operator shares
// with it (HMAC-SHA256 of `${t}.${body}`, header `hearth-signature: t=SECONDS,v1=HEX`).
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { FeeBody, GrantBody, OverdraftBody, PaymentWebhookBody } from '../../shared/protocol';
import type { Broker } from '../broker';
import { HttpError } from '../http-error';
import { fromMicro, Ledger } from '../ledger';
import { parse, principal, requireAuth } from './auth';

export const WEBHOOK_PATH = '/v1/ledger/webhook';
/** A signature older (or newer) than this is refused: a captured request cannot be replayed later. */
const WEBHOOK_TOLERANCE_S = 300;

const SinceQuery = z.object({ since: z.coerce.number().int().min(0).optional(), limit: z.coerce.number().int().min(1).max(100_000).optional() }).strict();

/** The signature header a payment provider sends for `body` at `t` (seconds). */
export function webhookSignature(secret: string, t: number, body: string): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

function checkSignature(secret: string, header: unknown, body: string, now: number): void {
  const m = typeof header === 'string' ? /^t=(\d{1,12}),v1=([0-9a-f]{64})$/.exec(header) : null;
  if (!m) throw new HttpError(401, 'bad_signature', 'the hearth-signature header is missing or malformed');
  const t = Number(m[1]);
  if (Math.abs(now / 1000 - t) > WEBHOOK_TOLERANCE_S) throw new HttpError(401, 'bad_signature', 'the signature is too old or from the future');
  const want = createHmac('sha256', secret).update(`${t}.${body}`).digest();
  if (!timingSafeEqual(want, Buffer.from(m[2]!, 'hex'))) throw new HttpError(401, 'bad_signature', 'the signature does not match');
}

export function ledgerRoutes(app: FastifyInstance, broker: Broker, ledger: Ledger, webhookSecret: string | undefined): void {
  const user = { onRequest: requireAuth(broker, 'user') };
  const admin = (req: FastifyRequest) => {
    if (!principal(req).isAdmin) throw new HttpError(403, 'forbidden', 'only an admin can do this');
  };
  const accountOf = async (nameOrId: string): Promise<string> => {
    const a = /^acct_/.test(nameOrId) ? { id: nameOrId } : await broker.store.accounts.findByName(nameOrId);
    if (!a) throw new HttpError(404, 'not_found', `no account ${nameOrId}`);
    return a.id;
  };

  app.get('/v1/ledger/balance', user, async (req) => ledger.balance(principal(req).accountId));
  app.get('/v1/ledger/postings', user, async (req) => {
    const q = parse(SinceQuery, req.query, 'query');
    const rows = await ledger.postings(principal(req).accountId, q.since, q.limit);
    return rows.map(({ amount, ...p }) => ({ ...p, credits: fromMicro(amount) }));
  });
  app.get('/v1/ledger/earnings', user, async (req) => {
    const q = parse(SinceQuery, req.query, 'query');
    const rows = await ledger.earnings(principal(req).accountId, q.since);
    const names = new Map<string, string>();
    for (const r of rows) if (!names.has(r.workerId)) names.set(r.workerId, (await broker.store.leases.workerName(r.workerId)) ?? '?');
    return rows.map((r) => ({ ...r, workerName: names.get(r.workerId)! }));
  });

  app.post('/v1/admin/grants', user, async (req, reply) => {
    admin(req);
    const b = parse(GrantBody, req.body, 'grant');
    const accountId = await accountOf(b.account);
    const r = await ledger.credit(accountId, b.credits, b.key ?? Ledger.newKey(), 'grant', b.memo ?? `granted by ${principal(req).name}`);
    reply.code(r.applied ? 201 : 200);
    return { accountId, ...r };
  });
  app.put('/v1/admin/overdraft', user, async (req) => {
    admin(req);
    const b = parse(OverdraftBody, req.body, 'overdraft');
    const accountId = await accountOf(b.account);
    await ledger.setOverdraft(accountId, b.credits);
    return ledger.balance(accountId);
  });
  app.put('/v1/admin/fee', user, async (req) => {
    admin(req);
    await ledger.setFee(parse(FeeBody, req.body, 'fee').share);
    return { share: await ledger.fee() };
  });

  app.post(WEBHOOK_PATH, async (req, reply) => {
    if (!webhookSecret) throw new HttpError(404, 'not_found', 'this broker takes no payments (no payment webhook secret is set)');
    const raw = (req as FastifyRequest & { rawBody?: string }).rawBody;
    if (raw === undefined) throw new HttpError(415, 'bad_body', 'a JSON body is required');
    checkSignature(webhookSecret, req.headers['hearth-signature'], raw, Date.now());
    const b = parse(PaymentWebhookBody, req.body, 'payment');
    const accountId = await accountOf(b.account);
    const r = await ledger.credit(accountId, b.credits, b.id, 'payment', `payment ${b.id}`);
    reply.code(r.applied ? 201 : 200);
    return { accountId, ...r };
  });
}
