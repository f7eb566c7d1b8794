// A malicious (or merely broken) worker: a raw WebSocket speaking the real worker protocol to a
// real broker, saying exactly what a test needs, including what an honest worker never would
// (another account's blob hash as an artifact, events for ended jobs, frames over the limit).
import WebSocket from 'ws';
import { PROTOCOL_VERSION, type BrokerToWorker, type EventBody, type GpuInfo } from '../../src/shared/protocol';

export const CPU: GpuInfo[] = [{ index: 0, uuid: 'cpu-0', name: 'Scripted CPU', memoryTotalMiB: 1024, isGpu: false }];

export class ScriptedWorker {
  readonly received: BrokerToWorker[] = [];
  workerId = '';
  closed: { code: number; reason: string } | undefined;
  private ws!: WebSocket;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly brokerUrl: string,
    private readonly token: string,
  ) {}

  /** Connects, says hello and waits for the welcome. */
  async connect(hello: { workerId?: string; name?: string; hostname?: string; gpus?: GpuInfo[]; jobs?: string[]; pricePerHour?: number } = {}): Promise<string> {
    const url = this.brokerUrl.replace(/^http/, 'ws') + '/v1/worker/ws';
    this.ws = new WebSocket(url, { headers: { authorization: `Bearer ${this.token}` } });
    this.ws.on('message', (raw) => {
      this.received.push(JSON.parse(raw.toString()) as BrokerToWorker);
      for (const w of this.waiters.splice(0)) w();
    });
    this.ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const w of this.waiters.splice(0)) w();
    });
    this.ws.on('error', () => undefined);
    await new Promise<void>((res, rej) => {
      this.ws.once('open', () => res());
      this.ws.once('error', rej);
    });
    this.send({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      ...(hello.workerId ? { workerId: hello.workerId } : {}),
      name: hello.name ?? 'scripted',
      hostname: hello.hostname ?? 'scripted-host',
      version: '0.0.0',
      gpus: hello.gpus ?? CPU,
      pricePerHour: hello.pricePerHour ?? 1,
      jobs: hello.jobs ?? [],
    });
    const welcome = await this.waitFor((m) => m.type === 'welcome', 'welcome');
    this.workerId = (welcome as { workerId: string }).workerId;
    return this.workerId;
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  event(jobId: string, wseq: number, body: EventBody): void {
    this.send({ type: 'event', jobId, wseq, body });
  }

  heartbeat(): void {
    this.send({ type: 'heartbeat', telemetry: [] });
  }

  async waitFor(pred: (m: BrokerToWorker) => boolean, what: string, ms = 20_000, from = 0): Promise<BrokerToWorker> {
    const end = Date.now() + ms;
    for (;;) {
      const hit = this.received.slice(from).find(pred);
      if (hit) return hit;
      if (this.closed) throw new Error(`socket closed (${this.closed.code} ${this.closed.reason}) while waiting for ${what}`);
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.received.slice(-5))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Waits for the broker's ack of (jobId, wseq) or a later one. */
  async acked(jobId: string, wseq: number, ms = 20_000): Promise<void> {
    await this.waitFor((m) => m.type === 'ack' && m.jobId === jobId && m.wseq >= wseq, `ack ${jobId} ${wseq}`, ms);
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((r) => {
      this.ws.once('close', () => r());
      this.ws.terminate();
    });
  }
}
