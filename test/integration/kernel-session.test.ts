// Kernel sessions: a real IPython kernel (Debian's python3-ipykernel, through jupyter_client in
// resources/hearth_kernel.py) on a real worker in its sandbox, driven through a real broker.
// Every output comes back as an event of the session's durable log, carrying its request id.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { BrokerClient, BrokerError } from '../../src/client/api';
import { startBroker, type RunningBroker } from '../../src/broker/server';
import type { JobEvent } from '../../src/shared/protocol';
import { startWorkerProc, stopProcess, waitFor, type WorkerProc } from './helpers';
import { backendFor } from '../backend';

type KernelEvent = Extract<JobEvent['body'], { type: 'kernel' }>;

/** A session's event log, followed in the background. */
class Session {
  readonly events: JobEvent[] = [];
  private readonly ac = new AbortController();
  readonly done: Promise<void>;

  constructor(
    readonly client: BrokerClient,
    readonly id: string,
  ) {
    this.done = (async () => {
      try {
        for await (const e of client.events(id, { follow: true, signal: this.ac.signal })) this.events.push(e);
      } catch {
        /* aborted */
      }
    })();
  }

  kernelEvents(requestId: string | null): KernelEvent[] {
    return this.events.flatMap((e) => (e.body.type === 'kernel' && e.body.requestId === requestId ? [e.body] : []));
  }

  async request(body: Parameters<BrokerClient['kernelRequest']>[1]): Promise<string> {
    return (await this.client.kernelRequest(this.id, body)).requestId;
  }

  /** Executes code and waits for its execute_reply; returns the request's kernel events. */
  async run(code: string, ms = 60_000): Promise<KernelEvent[]> {
    const rid = await this.request({ type: 'execute', code });
    await waitFor(`the reply to ${JSON.stringify(code.slice(0, 40))}`, () => (this.kernelEvents(rid).some((e) => e.msgType === 'execute_reply') ? true : undefined), ms, 25);
    return this.kernelEvents(rid);
  }

  async idle(): Promise<void> {
    await waitFor('the kernel to be idle', () => (this.kernelEvents(null).some((e) => e.msgType === 'status' && e.content.execution_state === 'idle') ? true : undefined), 60_000, 50);
  }

  stop(): void {
    this.ac.abort();
  }
}

const text = (evs: KernelEvent[], name = 'stdout') =>
  evs.filter((e) => e.msgType === 'stream' && e.content.name === name).map((e) => String(e.content.text)).join('');
const reply = (evs: KernelEvent[]) => evs.find((e) => e.msgType === 'execute_reply')!.content as { status: string; execution_count: number | null };
// eslint-disable-next-line no-control-regex
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');

describe('kernel sessions (integration)', function () {
  this.timeout(240_000);
  let dir: string;
  let broker: RunningBroker;
  let admin: BrokerClient;
  let worker: WorkerProc;
  let leaseId: string;
  let s: Session;

  before(async function () {
    dir = mkdtempSync(join(os.tmpdir(), 'hearth-kernel-'));
    broker = await startBroker({ ...(await backendFor(join(dir, 'broker'))), dataDir: join(dir, 'broker'), port: 0, heartbeatMs: 500 });
    admin = new BrokerClient({ url: broker.url, token: broker.adminToken! });
    const { token } = await admin.createToken('worker', 'w');
    worker = await startWorkerProc(broker.url, token, join(dir, 'worker'), ['--kill-grace', '1', '--nvidia-smi', join(dir, 'none')]);
    const offer = (await admin.offers())[0];
    if (!offer?.stack?.kernels) {
      await stopProcess(worker.proc);
      await broker.close();
      this.skip();
    }
    leaseId = (await admin.createLease({ count: 1, hours: 1 })).id;
    s = new Session(admin, (await admin.startKernel({ leaseId })).id);
    await s.idle();
  });
  after(async () => {
    s?.stop();
    if (worker) await stopProcess(worker.proc);
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps state across cells and numbers executions as the kernel does', async () => {
    const a = await s.run('x = 6\nprint("set")');
    assert.equal(text(a), 'set\n');
    assert.equal(reply(a).status, 'ok');
    const b = await s.run('x * 7');
    const result = b.find((e) => e.msgType === 'execute_result')!;
    assert.deepEqual((result.content.data as Record<string, string>)['text/plain'], '42');
    assert.equal(result.content.execution_count, reply(a).execution_count! + 1);
    // The broker logged what each request ran.
    const req = s.kernelEvents(b[0]!.requestId).find((e) => e.msgType === 'execute_request');
    assert.deepEqual(req?.content, { code: 'x * 7' });
  });

  it('streams a cell\'s output in order while it runs, and cells in the order they were sent', async () => {
    const first = s.request({ type: 'execute', code: 'import time, sys\nfor i in range(5):\n    print(f"a{i}", flush=True)\n    time.sleep(0.5)' });
    const r1 = await first;
    const r2 = await s.request({ type: 'execute', code: 'print("b0")\nprint("\\rprogress 50%", end="")\nprint("\\rprogress 100%")' });
    await waitFor('both replies', () => (s.kernelEvents(r2).some((e) => e.msgType === 'execute_reply') ? true : undefined), 60_000, 25);
    // While the first ran, its lines arrived one by one (more than one stream event).
    const pieces = s.kernelEvents(r1).filter((e) => e.msgType === 'stream').length;
    assert.ok(pieces > 1, `the 5 lines came in ${pieces} stream message(s)`);
    assert.equal(text(s.kernelEvents(r1)), 'a0\na1\na2\na3\na4\n');
    assert.equal(text(s.kernelEvents(r2)), 'b0\n\rprogress 50%\rprogress 100%\n', 'carriage returns are kept for the editor to draw');
    const seqOf = (rid: string, t: string) => s.events.find((e) => e.body.type === 'kernel' && e.body.requestId === rid && e.body.msgType === t)!.seq;
    assert.ok(seqOf(r1, 'execute_reply') < seqOf(r2, 'execute_input'));
  });

  it('returns every kind of output: image/png, text/html, application/json, display updates and errors', async () => {
    const fig = await s.run('import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()');
    const png = fig.find((e) => e.msgType === 'display_data')!;
    assert.match(String((png.content.data as Record<string, string>)['image/png']), /^iVBORw0KGgo/);
    const rich = await s.run('from IPython.display import HTML, JSON, display\ndisplay(HTML("<b>bold</b>"))\ndisplay(JSON({"a": 1}))\nh = display("v1", display_id=True)\nh.update("v2")');
    const datas = rich.filter((e) => e.msgType === 'display_data').map((e) => e.content.data as Record<string, unknown>);
    assert.equal(datas[0]!['text/html'], '<b>bold</b>');
    assert.deepEqual(datas[1]!['application/json'], { a: 1 });
    const update = rich.find((e) => e.msgType === 'update_display_data')!;
    assert.equal((update.content.data as Record<string, string>)['text/plain'], "'v2'");
    assert.equal((update.content.transient as { display_id: string }).display_id, (rich.filter((e) => e.msgType === 'display_data')[2]!.content.transient as { display_id: string }).display_id);
    const err = await s.run('def f():\n    raise ValueError("bad value")\nf()');
    const e = err.find((x) => x.msgType === 'error')!;
    assert.equal(e.content.ename, 'ValueError');
    assert.match(plain((e.content.traceback as string[]).join('\n')), /f\(\)/);
    assert.equal(reply(err).status, 'error');
  });

  it('input() asks, and the answer reaches the cell', async () => {
    const rid = await s.request({ type: 'execute', code: 'name = input("who? ")\nprint("hello", name)' });
    await waitFor('the input request', () => (s.kernelEvents(rid).some((e) => e.msgType === 'input_request') ? true : undefined), 30_000, 25);
    assert.equal(s.kernelEvents(rid).find((e) => e.msgType === 'input_request')!.content.prompt, 'who? ');
    await s.request({ type: 'input_reply', value: 'ada' });
    await waitFor('the reply', () => (s.kernelEvents(rid).some((e) => e.msgType === 'execute_reply') ? true : undefined), 30_000, 25);
    assert.equal(text(s.kernelEvents(rid)), 'hello ada\n');
  });

  it('interrupt raises KeyboardInterrupt in the running cell and keeps the state', async () => {
    await s.run('kept = "still here"');
    const rid = await s.request({ type: 'execute', code: 'import time\nfor i in range(600):\n    print(i, flush=True)\n    time.sleep(0.1)' });
    await waitFor('the loop to run', () => (text(s.kernelEvents(rid)).includes('3\n') ? true : undefined), 30_000, 25);
    await s.request({ type: 'interrupt' });
    await waitFor('the interrupted reply', () => (s.kernelEvents(rid).some((e) => e.msgType === 'execute_reply') ? true : undefined), 30_000, 25);
    assert.equal(s.kernelEvents(rid).find((e) => e.msgType === 'error')!.content.ename, 'KeyboardInterrupt');
    const after = await s.run('print(kept)');
    assert.equal(text(after), 'still here\n');
  });

  it('a crashed kernel is reported dead, not left hanging; restart gives a fresh kernel', async () => {
    const crash = await s.run('import os\nos._exit(1)');
    assert.equal(reply(crash).status, 'aborted');
    assert.match(String(crash.find((e) => e.msgType === 'error')!.content.evalue), /kernel died/);
    await waitFor('the dead state', () => (s.kernelEvents(null).some((e) => e.msgType === 'status' && e.content.execution_state === 'dead') ? true : undefined), 10_000, 25);
    const rid = await s.request({ type: 'restart' });
    await waitFor('the restart', () => (s.kernelEvents(rid).some((e) => e.msgType === 'status' && e.content.execution_state === 'idle') ? true : undefined), 60_000, 25);
    const fresh = await s.run('"kept" in dir()');
    assert.equal((fresh.find((e) => e.msgType === 'execute_result')!.content.data as Record<string, string>)['text/plain'], 'False');
    assert.equal(reply(fresh).execution_count, 1, 'a fresh kernel counts from 1');
  });

  it('a client that was away for a cell\'s whole run gets every output once, in order, from the log', async () => {
    const rid = await s.request({ type: 'execute', code: 'import time\nfor i in range(20):\n    print(f"line {i}", flush=True)\n    time.sleep(0.02)' });
    await waitFor('the cell to end', () => (s.kernelEvents(rid).some((e) => e.msgType === 'execute_reply') ? true : undefined), 30_000, 25);
    // A new client, reading the log from the start, as an editor reopened later does.
    const replayed: KernelEvent[] = [];
    for await (const e of admin.events(s.id)) if (e.body.type === 'kernel' && e.body.requestId === rid) replayed.push(e.body);
    assert.equal(text(replayed), Array.from({ length: 20 }, (_, i) => `line ${i}\n`).join(''));
    assert.deepEqual(replayed, s.kernelEvents(rid));
  });

  it('bad requests get clear errors and change nothing', async () => {
    const other = new BrokerClient({ url: broker.url, token: (await admin.createAccount('mallory')).token });
    await assert.rejects(other.kernelRequest(s.id, { type: 'execute', code: '1' }), (e: BrokerError) => e.status === 404);
    await assert.rejects(admin.kernelRequest(s.id, { type: 'execute' } as never), (e: BrokerError) => e.status === 400 && /code/.test(e.message));
    await assert.rejects(admin.kernelRequest(s.id, { type: 'nuke' } as never), (e: BrokerError) => e.status === 400);
  });

  it('stops when its lease ends, and a kernel idle for its idle time stops by itself', async () => {
    const idleLease = (await admin.createLease({ count: 1, hours: 1 }).catch(() => undefined)) ?? undefined;
    // One device: release the main lease first, which ends the main session.
    await admin.releaseLease(leaseId);
    await waitFor('the session to end with its lease', async () => ((await admin.job(s.id)).status === 'cancelled' ? true : undefined), 30_000);
    assert.match(String((await admin.job(s.id)).reason), /lease released/);
    await assert.rejects(admin.kernelRequest(s.id, { type: 'execute', code: '1' }), (e: BrokerError) => e.status === 409 && e.code === 'kernel_ended');
    const lease2 = idleLease ?? (await admin.createLease({ count: 1, hours: 1 }));
    const k = await admin.startKernel({ leaseId: lease2.id, idleMinutes: 0.05 });
    await waitFor('the idle kernel to stop', async () => ((await admin.job(k.id)).status === 'succeeded' ? true : undefined), 90_000, 250);
    const log: string[] = [];
    for await (const e of admin.events(k.id)) if (e.body.type === 'log') log.push(e.body.data);
    assert.match(log.join(''), /no request for 0 minutes|no request for/);
  });
});
