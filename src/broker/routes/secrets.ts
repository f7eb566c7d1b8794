// PUT/GET/DELETE /v1/secrets[/:name]: a renter's own secrets. No route ever returns a value.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { SecretName, SetSecretBody } from '../../shared/protocol';
import type { Broker } from '../broker';
import type { Secrets } from '../secrets';
import { parse, principal, requireAuth } from './auth';

const NameParams = z.object({ name: SecretName });

export function secretRoutes(app: FastifyInstance, broker: Broker, secrets: Secrets): void {
  const user = { onRequest: requireAuth(broker, 'user') };
  app.get('/v1/secrets', user, async (req) => secrets.list(principal(req).accountId));
  // A 64 KiB value can take several times that as escaped JSON.
  app.put('/v1/secrets/:name', { ...user, bodyLimit: 1024 * 1024 }, async (req) => {
    const { name } = parse(NameParams, req.params, 'secret name');
    const { value } = parse(SetSecretBody, req.body, 'secret');
    return secrets.set(principal(req).accountId, name, value);
  });
  app.delete('/v1/secrets/:name', user, async (req, reply) => {
    const { name } = parse(NameParams, req.params, 'secret name');
    await secrets.remove(principal(req).accountId, name);
    return reply.code(204).send();
  });
}
