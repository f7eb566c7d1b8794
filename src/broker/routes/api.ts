// The JSON routes: accounts, offers, leases, jobs. Every body and parameter is parsed with its
// schema; a failure is a 400 naming the offending path and changes nothing.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { CreateAccountBody, CreateLeaseBody, CreateTokenBody, Id, KernelRequestBody, RenewLeaseBody, SetSpendLimitBody, StartKernelBody, SubmitJobBody } from '../../shared/protocol';
import type { Broker } from '../broker';
import type { Spend } from '../spend';
import { HttpError } from '../http-error';
import { parse, principal, requireAuth } from './auth';

const IdParams = z.object({ id: Id });
// A manifest of 200 000 files (the most Manifest allows) at about 150 bytes an entry as JSON.
const JOB_BODY_LIMIT = 32 * 1024 * 1024;

export function apiRoutes(app: FastifyInstance, broker: Broker, spend: Spend, version: string): void {
  // onRequest runs before the body is read: a stranger's request is refused without parsing it.
  const user = { onRequest: requireAuth(broker, 'user') };

  app.get('/v1/health', async () => ({ ok: true, version }));

  app.get('/v1/me', user, async (req) => {
    const p = principal(req);
    return { accountId: p.accountId, name: p.name, isAdmin: p.isAdmin };
  });

  app.post('/v1/accounts', user, async (req, reply) => {
    const p = principal(req);
    if (!p.isAdmin) throw new HttpError(403, 'forbidden', 'only an admin can create accounts');
    const body = parse(CreateAccountBody, req.body, 'account');
    const created = await broker.createAccount(body.name);
    if (body.spendLimit !== undefined) await spend.setAccountLimit(created.accountId, body.spendLimit);
    reply.code(201);
    return created;
  });

  app.post('/v1/tokens', user, async (req, reply) => {
    const body = parse(CreateTokenBody, req.body ?? {}, 'token request');
    const expiresAt = body.expiresInSeconds === undefined ? undefined : Date.now() + body.expiresInSeconds * 1000;
    const { token, info } = await broker.accounts.createToken(principal(req).accountId, body.kind, body.label, expiresAt);
    reply.code(201);
    return { token, kind: body.kind, id: info.id, expiresAt: info.expiresAt };
  });
  // Own tokens only, an admin's too: the secrets are stored hashed, so there is nothing to read.
  app.get('/v1/tokens', user, async (req) => broker.accounts.list(principal(req).accountId));
  app.delete('/v1/tokens/:id', user, async (req) => {
    const { id } = parse(IdParams, req.params, 'token id');
    // Revoking the token this very request uses would lock its owner out (the admin's only one).
    if (id === principal(req).tokenId) throw new HttpError(409, 'own_token', `${id} is the token you are using; revoke it with another of your tokens`);
    return broker.accounts.revoke(principal(req).accountId, id);
  })

  app.get('/v1/offers', user, async () => broker.offers());

  // Leases carry their spend controls (cap, idle release, warning, end reason): see spend.ts.
  app.get('/v1/leases', user, async (req) => spend.decorateAll(await broker.leases(principal(req))));
  app.post('/v1/leases', user, async (req, reply) => {
    const body = parse(CreateLeaseBody, req.body ?? {}, 'lease request');
    await spend.assertMayLease(principal(req).accountId);
    const lease = await broker.createLease(principal(req), body);
    reply.code(201);
    return spend.leaseCreated(lease, body);
  });
  app.get('/v1/leases/:id', user, async (req) => spend.decorate(await broker.lease(principal(req), parse(IdParams, req.params, 'lease id').id)));
  app.post('/v1/leases/:id/renew', user, async (req) => {
    const { id } = parse(IdParams, req.params, 'lease id');
    return spend.decorate(await broker.renewLease(principal(req), id, parse(RenewLeaseBody, req.body, 'renewal').hours));
  });
  app.post('/v1/leases/:id/release', user, async (req) => spend.decorate(await broker.releaseLease(principal(req), parse(IdParams, req.params, 'lease id').id)));

  app.get('/v1/account/spend', user, async (req) => spend.accountSpend(principal(req).accountId));
  // The renter's own budget (as a cloud budget is the account owner's): set, change or remove it.
  app.put('/v1/account/limit', user, async (req) => {
    const body = parse(SetSpendLimitBody, req.body, 'spend limit');
    await spend.setAccountLimit(principal(req).accountId, body.spendLimit);
    return spend.accountSpend(principal(req).accountId);
  });

  app.post('/v1/jobs', { ...user, bodyLimit: JOB_BODY_LIMIT }, async (req, reply) => {
    const body = parse(SubmitJobBody, req.body, 'job');
    reply.code(201);
    return broker.submitJob(principal(req), body);
  });
  app.post('/v1/kernels', { ...user, bodyLimit: JOB_BODY_LIMIT }, async (req, reply) => {
    const body = parse(StartKernelBody, req.body ?? {}, 'kernel');
    reply.code(201);
    return broker.startKernel(principal(req), body);
  });
  app.post('/v1/jobs/:id/requests', { ...user, bodyLimit: 8 * 1024 * 1024 }, async (req, reply) => {
    const { id } = parse(IdParams, req.params, 'session id');
    const body = parse(KernelRequestBody, req.body, 'kernel request');
    reply.code(202);
    return broker.kernelRequest(principal(req), id, body);
  });
  app.get('/v1/jobs', user, async (req) => broker.jobs(principal(req)));
  app.get('/v1/jobs/:id', user, async (req) => {
    const p = principal(req);
    return broker.toJob(await broker.jobRow(p, parse(IdParams, req.params, 'job id').id));
  });
  app.post('/v1/jobs/:id/cancel', user, async (req) => broker.cancelJob(principal(req), parse(IdParams, req.params, 'job id').id));
  app.get('/v1/jobs/:id/artifacts', user, async (req) => broker.artifacts(principal(req), parse(IdParams, req.params, 'job id').id));
}
