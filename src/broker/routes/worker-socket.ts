import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import type { Broker } from '../broker';
import type { WorkerHub } from '../worker-hub';
import { principal, requireAuth } from './auth';

/** Close code for a socket whose token was revoked or has expired (4000-4999: the application's). */
export const TOKEN_REFUSED_CLOSE = 4401;

/**
 * The open worker sockets by the token that opened them. A token is checked once, at the upgrade;
 * this is what makes a revoked or expired token stop working on a socket that is already open.
 */
export class SocketsByToken {
  private readonly byToken = new Map<string, Set<WebSocket>>();

  add(tokenId: string, socket: WebSocket): void {
    let set = this.byToken.get(tokenId);
    if (!set) this.byToken.set(tokenId, (set = new Set()));
    set.add(socket);
    socket.once('close', () => {
      set.delete(socket);
      if (!set.size && this.byToken.get(tokenId) === set) this.byToken.delete(tokenId);
    });
  }

  /** Closes every socket opened with this token; the worker hub sees an ordinary disconnect. */
  close(tokenId: string, why: string): void {
    for (const s of this.byToken.get(tokenId) ?? []) {
      try {
        s.send(JSON.stringify({ type: 'error', message: why }));
      } finally {
        s.close(TOKEN_REFUSED_CLOSE, why);
      }
    }
  }

  /** Closes the sockets of tokens that expired, were revoked (on any replica) or vanished since they were opened. */
  async closeExpired(stillValid: (tokenId: string) => Promise<boolean>): Promise<void> {
    for (const tokenId of [...this.byToken.keys()]) if (!(await stillValid(tokenId))) this.close(tokenId, 'token expired or revoked');
  }
}

export function workerSocketRoute(app: FastifyInstance, broker: Broker, hub: WorkerHub): SocketsByToken {
  const sockets = new SocketsByToken();
  broker.accounts.onTokenRevoked((tokenId) => sockets.close(tokenId, 'token revoked'));
  // The token is checked before the upgrade, so a stranger gets a plain 401 and no socket.
  app.get('/v1/worker/ws', { websocket: true, onRequest: requireAuth(broker, 'worker') }, (socket, req) => {
    const p = principal(req);
    sockets.add(p.tokenId, socket);
    hub.accept(socket, p);
  });
  return sockets;
}
