// The worker's one outbound WebSocket to the broker (so a worker behind NAT can serve). It says
// hello on every connect, reconnects with capped exponential backoff and jitter, heartbeats at the
// rate the broker's welcome asks, and hands on only messages that parse as BrokerToWorker. Given
// several broker URLs (replicas on one database), it moves to the next one when a connection fails.
import WebSocket from 'ws';
import { BrokerToWorker, type WorkerHello, type WorkerToBroker } from '../shared/protocol';
import type { LogFn } from './job-run';

export interface ConnectionOptions {
  /** one broker, or several replicas of one: tried in turn, starting with the first */
  brokerUrls: string[];
  /** the broker at `url` welcomed the worker */
  onWelcome?: (url: string) => void;
  token: string;
  /** built fresh for each connect: it carries the current workerId and held jobs */
  hello: () => WorkerHello;
  heartbeat: () => Extract<WorkerToBroker, { type: 'heartbeat' }>;
  onMessage: (msg: BrokerToWorker) => void;
  /** the welcomed connection went away */
  onDisconnect?: () => void;
  /**
   * The broker will not have this worker as it is (token refused, protocol not spoken); retrying
   * goes on, but whoever started the worker may want to give up.
   */
  onRefused?: (why: string) => void;
  log: LogFn;
  maxBackoffMs?: number;
}

export function workerSocketUrl(brokerUrl: string): string {
  const u = new URL(brokerUrl);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = u.pathname.replace(/\/+$/, '') + '/v1/worker/ws';
  u.search = '';
  u.hash = '';
  return u.toString();
}

/** Full-jitter exponential backoff: uniform in [base/2, min(cap, base·2^attempt)]. */
export function backoffDelay(attempt: number, capMs = 5000, baseMs = 200): number {
  const ceil = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.max(baseMs / 2, Math.random() * ceil);
}

export class BrokerConnection {
  private ws: WebSocket | undefined;
  private welcomed = false;
  private closed = false;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private lastHeard = 0;
  /** which of brokerUrls the current (or next) connection goes to */
  private which = 0;

  constructor(private readonly opts: ConnectionOptions) {
    if (opts.brokerUrls.length === 0) throw new Error('no broker URL');
  }

  /** Welcomed and open: events may be sent. */
  get ready(): boolean {
    return this.welcomed && this.ws?.readyState === WebSocket.OPEN;
  }
  get bufferedAmount(): number {
    return this.ws?.bufferedAmount ?? 0;
  }

  start(): void {
    this.connect();
  }

  /** Sends a serialised WorkerToBroker message; false when there is no welcomed connection. */
  send(message: string): boolean {
    if (!this.ready) return false;
    this.ws!.send(message);
    return true;
  }

  sendMessage(msg: WorkerToBroker): boolean {
    return this.send(JSON.stringify(msg));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.stopHeartbeat();
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        ws.terminate();
        resolve();
      }, 2000);
      ws.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      try {
        ws.close(1000, 'worker stopping');
      } catch {
        ws.terminate();
      }
    });
  }

  private connect(): void {
    if (this.closed) return;
    const brokerUrl = this.opts.brokerUrls[this.which % this.opts.brokerUrls.length]!;
    const url = workerSocketUrl(brokerUrl);
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${this.opts.token}` },
      handshakeTimeout: 10_000,
      // Masking guards proxies against payloads chosen by scripts in a browser; this client is no
      // browser. A zero key lets ws skip the XOR on both ends, which costs a core at log rates.
      generateMask: (mask: Buffer) => void mask.fill(0),
    });
    this.ws = ws;
    this.welcomed = false;
    ws.on('open', () => {
      this.lastHeard = Date.now();
      ws.send(JSON.stringify(this.opts.hello()));
    });
    ws.on('message', (data, isBinary) => {
      this.lastHeard = Date.now();
      if (isBinary) return this.opts.log('warn', 'ignoring a binary message from the broker');
      let json: unknown;
      try {
        json = JSON.parse(data.toString());
      } catch {
        return this.opts.log('warn', 'ignoring a message from the broker that is not JSON');
      }
      const parsed = BrokerToWorker.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        return this.opts.log('warn', 'ignoring a malformed message from the broker', {
          issue: issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid',
        });
      }
      const msg = parsed.data;
      if (msg.type === 'welcome') {
        this.welcomed = true;
        this.attempt = 0;
        this.startHeartbeat(msg.heartbeatMs);
        this.opts.onWelcome?.(brokerUrl);
      } else if (msg.type === 'error') {
        this.opts.log('warn', 'broker reported an error', { message: msg.message });
      }
      try {
        this.opts.onMessage(msg);
      } catch (err) {
        this.opts.log('error', 'handling a broker message failed', { type: msg.type, err: (err as Error).message });
      }
    });
    ws.on('pong', () => (this.lastHeard = Date.now()));
    ws.on('unexpected-response', (_req, res) => {
      const denied = res.statusCode === 401 || res.statusCode === 403;
      this.opts.log(denied ? 'error' : 'warn', 'broker refused the worker connection', { status: res.statusCode });
      res.resume();
      ws.terminate();
      if (denied) this.opts.onRefused?.(`the broker refused the worker token (HTTP ${res.statusCode}); a worker needs a worker token`);
    });
    ws.on('error', (err) => {
      this.opts.log('debug', 'connection error', { err: err.message });
    });
    ws.on('close', (code, reason) => {
      const wasWelcomed = this.welcomed;
      if (code === 4426) this.opts.onRefused?.(`the broker does not speak this worker's protocol: ${reason.toString()}`);
      // The token was revoked or expired while connected: a reconnect would only be refused.
      if (code === 4401) this.opts.onRefused?.(`the broker no longer accepts this worker's token (${reason.toString() || 'revoked or expired'}); start it with a new worker token`);
      if (code === 4409) this.opts.log('error', 'another worker connected with this worker id (the same work dir on two hosts?)');
      this.welcomed = false;
      this.stopHeartbeat();
      if (this.ws === ws) this.ws = undefined;
      if (wasWelcomed) {
        this.opts.log(this.closed ? 'debug' : 'warn', 'lost the connection to the broker', { code, reason: reason.toString() });
        this.opts.onDisconnect?.();
      }
      if (this.closed) return;
      // With replicas, the next try goes to the next one, at once the first time round.
      const n = this.opts.brokerUrls.length;
      if (n > 1) this.which = (this.which + 1) % n;
      const delay = n > 1 && this.attempt < n ? 100 : backoffDelay(this.attempt, this.opts.maxBackoffMs ?? 5000);
      this.attempt++;
      this.opts.log('debug', 'reconnecting', { inMs: Math.round(delay) });
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    });
  }

  private startHeartbeat(ms: number): void {
    this.stopHeartbeat();
    const interval = Math.max(100, ms);
    this.heartbeatTimer = setInterval(() => {
      const ws = this.ws;
      if (!ws || ws.readyState !== WebSocket.OPEN) return;
      // A half-open TCP connection never errors by itself: give up on one that has gone quiet.
      if (Date.now() - this.lastHeard > 3 * interval + 5000) {
        this.opts.log('warn', 'broker stopped answering; reconnecting');
        ws.terminate();
        return;
      }
      ws.ping();
      ws.send(JSON.stringify(this.opts.heartbeat()));
    }, interval);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }
}
