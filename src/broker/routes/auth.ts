import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ZodType, ZodTypeDef } from 'zod';
import type { Broker, Principal } from '../broker';
import { HttpError } from '../http-error';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  const m = typeof h === 'string' ? /^Bearer\s+(\S+)$/i.exec(h) : null;
  return m?.[1];
}

/**
 * Route guard: a user token (or, with `worker`, a worker token) must be presented. Used as an
 * onRequest hook, which runs before the body is read, so a stranger's body is never parsed.
 */
export function requireAuth(broker: Broker, kind: 'user' | 'worker' | 'any' = 'user') {
  return async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const r = await broker.accounts.check(bearer(req));
    if (!r.ok) throw new HttpError(401, 'unauthorized', r.reason);
    const p = r.principal;
    if (kind !== 'any' && p.kind !== kind) throw new HttpError(403, 'forbidden', `this needs a ${kind} token, not a ${p.kind} token`);
    req.principal = p;
  };
}

export function principal(req: FastifyRequest): Principal {
  if (!req.principal) throw new HttpError(401, 'unauthorized', 'not authenticated');
  return req.principal;
}

export function parse<T>(schema: ZodType<T, ZodTypeDef, unknown>, data: unknown, where: string): T {
  const r = schema.safeParse(data);
  if (!r.success) throw HttpError.fromZod(r.error, where);
  return r.data;
}
