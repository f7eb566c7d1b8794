// The worker's side of the socket protocol, driven by a scripted broker peer: a small HTTP +
// WebSocket server that says exactly what a test needs, including what the real broker never
// would (garbage, withheld acks, a dropped connection at a chosen moment). The jobs are real
// python3 processes; the real broker is exercised in worker-jobs and worker-reconnect.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import { join } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { EventBody, JobAssignment } from '../../src/shared/protocol';
import { startWorker, type RunningWorker, type WorkerOptions } from '../../src/worker/main';

const TOKEN = 'worker-token-for-tests';
const WORKER_ID = 'wrk_scripted01';

interface Received {
  conn: number;
  msg: Record<string, unknown> & { type: string };
}
type EventMsg = { type: 'event'; jobId: string; wseq: number; body: EventBody };

class ScriptedBroker {
  readonly blobs = new Map<string, Buffer>();
  readonly uploads = new Map<string, Buffer>();
  readonly received: Received[] = [];
  readonly blobRequests: { sha: string; range: string | undefined }[] = [];
  /** per blob, how many of its downloads are cut off half way */
  readonly cutBlobDownloads = new Map<string, number>();
  autoAck = true;
  private server!: Server;
  private wss!: WebSocketServer;
  private conns: WebSocket[] = [];
  private waiters: (() => void)[] = [];
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      if (req.headers.authorization !== `Bearer ${TOKEN}`) {
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'unauthorized', message: 'bad token' }));
        return;
      }
      const get = /^\/v1\/blobs\/([0-9a-f]{64})$/.exec(req.url ?? '');
      const put = /^\/v1\/jobs\/([^/]+)\/blobs\/([0-9a-f]{64})$/.exec(req.url ?? '');
      if (req.method === 'GET' && get) {
        const b = this.blobs.get(get[1]!);
        if (!b) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found","message":"no blob"}');
        this.blobRequests.push({ sha: get[1]!, range: req.headers.range });
        const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
        const body = b.subarray(start);
        res.writeHead(start > 0 ? 206 : 200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
        const cuts = this.cutBlobDownloads.get(get[1]!) ?? 0;
        if (cuts > 0) {
          // A connection that dies half way through the body.
          this.cutBlobDownloads.set(get[1]!, cuts - 1);
          res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.destroy());
          return;
        }
        res.end(body);
      } else if (req.method === 'POST' && req.url === '/v1/blobs/uploads') {
        // A broker whose blobs live in its own folder: no presigned URLs, it takes the bytes itself.
        req.resume();
        req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"direct":false}'));
      } else if (req.method === 'PUT' && put) {
        const parts: Buffer[] = [];
        req.on('data', (c: Buffer) => parts.push(c));
        req.on('end', () => {
          this.uploads.set(put[2]!, Buffer.concat(parts));
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        });
      } else {
        res.writeHead(404).end();
      }
    });
    // Like the real broker, a wrong token gets a plain 401 before any upgrade.
    this.wss = new WebSocketServer({
      server: this.server,
      path: '/v1/worker/ws',
      verifyClient: (info, cb) => cb(info.req.headers.authorization === `Bearer ${TOKEN}`, 401),
    });
    this.wss.on('connection', (ws) => {
      const conn = this.conns.push(ws);
      ws.on('message', (data) => {
        const msg = JSON.parse(data.toString()) as Received['msg'];
        this.received.push({ conn, msg });
        if (msg.type === 'hello') this.send({ type: 'welcome', workerId: WORKER_ID, heartbeatMs: 200 });
        if (msg.type === 'event' && this.autoAck) this.send({ type: 'ack', jobId: msg.jobId, wseq: msg.wseq });
        for (const w of this.waiters.splice(0)) w();
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  get connections(): number {
    return this.conns.length;
  }

  /** To the newest connection; raw strings go as they are. */
  send(msg: unknown): void {
    this.conns[this.conns.length - 1]!.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  dropConnection(): void {
    this.conns[this.conns.length - 1]!.terminate();
  }

  async waitFor<T extends Received>(pred: (r: Received) => boolean, what: string, timeoutMs = 30_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.received.find(pred);
      if (hit) return hit as T;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  events(jobId: string, conn?: number): { conn: number; msg: EventMsg }[] {
    return this.received.filter((r) => r.msg.type === 'event' && r.msg.jobId === jobId && (conn === undefined || r.conn === conn)) as unknown as {
      conn: number;
      msg: EventMsg;
    }[];
  }

  /** Each wseq once (resends collapsed), in wseq order. */
  uniqueEvents(jobId: string): EventMsg[] {
    const m = new Map<number, EventMsg>();
    for (const r of this.events(jobId)) if (!m.has(r.msg.wseq)) m.set(r.msg.wseq, r.msg);
    return [...m.values()].sort((a, b) => a.wseq - b.wseq);
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.terminate();
    this.wss.close();
    await new Promise((r) => this.server.close(r));
  }
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
let jobCounter = 0;

function job(peer: ScriptedBroker, files: Record<string, string>, spec: Partial<JobAssignment['spec']> & { entry: string }, ackedWseq = 0): JobAssignment {
  const manifest = Object.entries(files).map(([path, content]) => {
    const b = Buffer.from(content);
    peer.blobs.set(sha(b), b);
    return { path, sha256: sha(b), size: b.length, executable: false };
  });
  return {
    jobId: `job_scripted${String(++jobCounter).padStart(4, '0')}`,
    leaseId: 'lse_scripted01',
    gpuIndices: [0],
    ackedWseq,
    spec: { kind: 'job', idleMinutes: 60, releaseLease: false, args: [], env: {}, outputs: [], logdir: 'runs', ...spec, manifest: { files: manifest } },
  };
}

const stdoutOf = (events: EventMsg[]) => events.map((e) => (e.body.type === 'log' && e.body.stream === 'stdout' ? e.body.data : '')).join('');
const isTerminalEvent = (r: Received, jobId: string) =>
  r.msg.type === 'event' && r.msg.jobId === jobId && (r.msg as unknown as EventMsg).body.type === 'status' &&
  ['succeeded', 'failed', 'cancelled', 'lost'].includes((r.msg as unknown as { body: { status: string } }).body.status);

describe('worker protocol against a scripted broker peer', function () {
  this.timeout(60_000);
  let dir: string;
  let peer: ScriptedBroker;
  let worker: RunningWorker | undefined;
  let log: string[];

  beforeEach(async () => {
    dir = mkdtempSync(join(os.tmpdir(), 'hearth-worker-proto-'));
    peer = new ScriptedBroker();
    await peer.start();
    log = [];
  });
  afterEach(async () => {
    await worker?.stop();
    worker = undefined;
    await peer.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function start(extra: Partial<WorkerOptions> = {}): RunningWorker {
    worker = startWorker({
      brokerUrl: peer.url,
      token: TOKEN,
      workDir: join(dir, 'work'),
      name: 'scripted',
      nvidiaSmi: join(dir, 'none'),
      telemetryMs: 60_000,
      killGraceMs: 1000,
      log: (level, msg, fields) => log.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`),
      ...extra,
    });
    return worker;
  }

  it('ignores garbage and invalid messages, stays connected, and still runs a valid job', async () => {
    const w = start();
    assert.equal(await w.workerId, WORKER_ID);
    const hello = (await peer.waitFor((r) => r.msg.type === 'hello', 'hello')).msg;
    assert.equal(hello.protocol, 1);
    assert.equal(hello.name, 'scripted');
    assert.deepEqual(hello.jobs, []);
    assert.equal(hello.workerId, undefined, 'a first start has no id yet');
    assert.equal((hello.gpus as { isGpu: boolean }[])[0]!.isGpu, false);

    peer.send('this is not json');
    peer.send({ type: 'no-such-type' });
    peer.send({ type: 'ack', jobId: 'not an id', wseq: 1 });
    const evil = job(peer, { 'a.py': 'print(1)' }, { entry: 'a.py' });
    peer.send({ type: 'job', job: { ...evil, spec: { ...evil.spec, entry: '../../etc/passwd' } } });
    peer.send({ type: 'job', job: { ...evil, spec: { ...evil.spec, manifest: { files: [{ path: '/etc/cron.d/x', sha256: '0'.repeat(64), size: 1 }] } } } });
    peer.send({ type: 'cancel', jobId: 'job_unknown01', reason: 'nothing to cancel' });

    const good = job(
      peer,
      { 'pkg/main.py': 'import os, sys\nprint("ok", sys.argv[1], oct(os.stat("pkg/run.sh").st_mode & 0o777), oct(os.stat("pkg/main.py").st_mode & 0o777))\n', 'pkg/run.sh': '#!/bin/sh\n' },
      { entry: 'pkg/main.py', args: ['x'] },
    );
    good.spec.manifest.files.find((f) => f.path === 'pkg/run.sh')!.executable = true;
    peer.send({ type: 'job', job: good });
    await peer.waitFor((r) => isTerminalEvent(r, good.jobId), 'the good job to end');
    const events = peer.uniqueEvents(good.jobId);
    assert.equal(stdoutOf(events), 'ok x 0o755 0o644\n');
    assert.ok(peer.received.some((r) => r.msg.type === 'job-accepted' && r.msg.jobId === good.jobId));
    assert.ok(!peer.received.some((r) => r.msg.type === 'job-accepted' && r.msg.jobId === evil.jobId), 'the malformed jobs were never accepted');
    assert.equal(existsSync(join(dir, 'work', 'jobs', evil.jobId)), false);
    assert.equal(peer.connections, 1, 'no reconnect was needed');
    assert.equal(log.filter((l) => l.includes('ignoring a')).length, 5);
  });

  it('after a dropped connection says hello with its id and held job, resends every unacked event in order, and does not run a re-sent job twice', async () => {
    peer.autoAck = false;
    const w = start();
    await w.workerId;
    const j = job(peer, { 'j.py': 'import os, time\nprint("first")\nwhile not os.path.exists("go"): time.sleep(0.02)\nprint("second")\n' }, { entry: 'j.py' });
    peer.send({ type: 'job', job: j });
    await peer.waitFor((r) => r.msg.type === 'event' && JSON.stringify(r.msg).includes('first'), 'the first line');
    const before = peer.events(j.jobId, 1).map((r) => r.msg.wseq);
    assert.deepEqual(before, before.map((_, i) => i + 1));

    peer.dropConnection();
    const hello2 = (await peer.waitFor((r) => r.msg.type === 'hello' && r.conn === 2, 'a second hello')).msg;
    assert.equal(hello2.workerId, WORKER_ID);
    assert.deepEqual(hello2.jobs, [j.jobId]);
    await peer.waitFor((r) => r.conn === 2 && r.msg.type === 'event' && (r.msg as unknown as EventMsg).wseq === before.length, 'the resend');
    assert.deepEqual(
      peer.events(j.jobId, 2).map((r) => r.msg.wseq),
      before,
      'everything unacknowledged came again, from wseq 1, in order',
    );

    // The broker re-sends the job as after its own restart: the worker keeps the one it runs.
    peer.send({ type: 'job', job: { ...j, ackedWseq: 1 } });
    await peer.waitFor((r) => r.conn === 2 && r.msg.type === 'job-accepted', 'job-accepted again');
    peer.autoAck = true;
    peer.send({ type: 'ack', jobId: j.jobId, wseq: before.length });
    writeFileSync(join(dir, 'work', 'jobs', j.jobId, 'go'), '');
    await peer.waitFor((r) => isTerminalEvent(r, j.jobId), 'the job to end');
    const events = peer.uniqueEvents(j.jobId);
    assert.deepEqual(events.map((e) => e.wseq), events.map((_, i) => i + 1));
    assert.equal(stdoutOf(events), 'first\nsecond\n');
    assert.equal(events.filter((e) => e.body.type === 'status' && e.body.status === 'running').length, 1, 'started once');
  });

  it('stops reading job output while too much is unacknowledged, and loses nothing once acks come', async () => {
    peer.autoAck = false;
    const w = start({ maxUnackedBytes: 200_000 });
    await w.workerId;
    const line = 'z'.repeat(999);
    const j = job(peer, { 'flood.py': `for i in range(20000): print(f"{i:06d} ${line}")\n` }, { entry: 'flood.py' });
    peer.send({ type: 'job', job: j });
    await peer.waitFor(() => log.some((l) => l.includes('pausing job output')), 'the worker to pause output');
    // Had it kept reading, the whole 20 MB would arrive in a fraction of a second.
    await new Promise((r) => setTimeout(r, 500));
    const got = peer.uniqueEvents(j.jobId).reduce((n, e) => n + (e.body.type === 'log' ? e.body.data.length : 0), 0);
    assert.ok(got < 4_000_000, `${got} bytes arrived while unacknowledged`);
    assert.ok(!peer.received.some((r) => isTerminalEvent(r, j.jobId)), 'the job is held up, not finished');

    peer.autoAck = true;
    const maxSeen = Math.max(...peer.events(j.jobId).map((r) => r.msg.wseq));
    peer.send({ type: 'ack', jobId: j.jobId, wseq: maxSeen });
    await peer.waitFor((r) => isTerminalEvent(r, j.jobId), 'the job to end');
    const events = peer.uniqueEvents(j.jobId);
    assert.deepEqual(events.map((e) => e.wseq), events.map((_, i) => i + 1));
    assert.equal(stdoutOf(events), Array.from({ length: 20000 }, (_, i) => `${String(i).padStart(6, '0')} ${line}\n`).join(''));
    assert.ok(log.some((l) => l.includes('resuming job output')));
  });

  it('rejects workerId when the broker refuses its token, instead of waiting forever', async () => {
    const w = start({ token: 'not-the-right-token' });
    await assert.rejects(w.workerId, /refused the worker token \(HTTP 401\)/);
  });

  it('keeps only the newest finished job folders', async () => {
    const w = start({ keepFinishedJobDirs: 1 });
    await w.workerId;
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const j = job(peer, { 'a.py': `open("out.txt", "w").write("${i}")\n` }, { entry: 'a.py' });
      ids.push(j.jobId);
      peer.send({ type: 'job', job: j });
      await peer.waitFor((r) => isTerminalEvent(r, j.jobId), 'the job to end');
    }
    const jobsDir = join(dir, 'work', 'jobs');
    const end = Date.now() + 10_000;
    while (existsSync(join(jobsDir, ids[0]!)) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    assert.equal(existsSync(join(jobsDir, ids[0]!)), false, 'the older folder is removed');
    assert.equal(readFileSync(join(jobsDir, ids[1]!, 'out.txt'), 'utf8'), '1', 'the newest stays for inspection');
  });

  it('resumes a blob download cut half way with a Range request', async () => {
    const w = start();
    await w.workerId;
    const big = Buffer.alloc(3_000_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
    const j = job(peer, { 'r.py': 'import hashlib\nprint(hashlib.sha256(open("data.bin", "rb").read()).hexdigest())\n' }, { entry: 'r.py' });
    peer.blobs.set(sha(big), big);
    j.spec.manifest.files.push({ path: 'data.bin', sha256: sha(big), size: big.length, executable: false });
    peer.cutBlobDownloads.set(sha(big), 2);
    peer.send({ type: 'job', job: j });
    await peer.waitFor((r) => isTerminalEvent(r, j.jobId), 'the job to end');
    assert.equal(stdoutOf(peer.uniqueEvents(j.jobId)), sha(big) + '\n');
    const asks = peer.blobRequests.filter((r) => r.sha === sha(big));
    assert.equal(asks.length, 3, JSON.stringify(asks.map((a) => a.range)));
    assert.equal(asks[0]!.range, undefined);
    // Each retry continues from what had reached the partial file (at most the half the peer sent
    // before the cut). How much of the second cut's half was written before the reset is up to
    // the sockets' timing, possibly none: the third ask starts no earlier than the second.
    const starts = asks.slice(1).map((a) => Number(/^bytes=(\d+)-$/.exec(a.range ?? '')?.[1]));
    assert.ok(starts[0]! > 0 && starts[0]! <= 1_500_000, `second ask starts at ${starts[0]}`);
    assert.ok(starts[1]! >= starts[0]! && starts[1]! <= starts[0]! + (big.length - starts[0]!) / 2, `third ask starts at ${starts[1]}`);
  });

  it('fails a job whose blob does not match its hash, without running it', async () => {
    const w = start();
    await w.workerId;
    const j = job(peer, { 'a.py': 'print("should not run")' }, { entry: 'a.py' });
    const [shaOfA] = [...peer.blobs.keys()];
    peer.blobs.set(shaOfA!, Buffer.from('print("evil")'));
    peer.send({ type: 'job', job: j });
    await peer.waitFor((r) => isTerminalEvent(r, j.jobId), 'the job to end');
    const events = peer.uniqueEvents(j.jobId);
    const last = events[events.length - 1]!.body;
    assert.ok(last.type === 'status' && last.status === 'failed');
    assert.match(String(last.reason), /downloaded bytes do not match/);
    assert.equal(stdoutOf(events), '');
    assert.ok(!events.some((e) => e.body.type === 'status' && e.body.status === 'running'));
  });

  it('fails a job cleanly when the Python interpreter is missing', async () => {
    const w = start({ python: join(dir, 'no-such-python') });
    await w.workerId;
    const j = job(peer, { 'a.py': 'print(1)' }, { entry: 'a.py' });
    peer.send({ type: 'job', job: j });
    await peer.waitFor((r) => isTerminalEvent(r, j.jobId), 'the job to end');
    const last = peer.uniqueEvents(j.jobId).pop()!.body;
    assert.ok(last.type === 'status' && last.status === 'failed');
    assert.match(String(last.reason), /could not start .*no-such-python.*ENOENT/);
  });

  it('reports as lost a job the broker says had events but this worker never held', async () => {
    const w = start();
    await w.workerId;
    const j = job(peer, { 'a.py': 'print(1)' }, { entry: 'a.py' }, 7);
    peer.send({ type: 'job', job: j });
    const st = await peer.waitFor<{ conn: number; msg: EventMsg & Received['msg'] }>((r) => isTerminalEvent(r, j.jobId), 'the status');
    assert.equal(st.msg.wseq, 8);
    assert.ok(st.msg.body.type === 'status' && st.msg.body.status === 'lost');
  });

  it('stop() cancels a running job, uploads what it wrote and sends its end before closing', async () => {
    const w = start();
    await w.workerId;
    const j = job(
      peer,
      { 'long.py': 'import os, time\nos.makedirs("out", exist_ok=True)\nopen("out/a.txt", "w").write("partial")\nprint("up", flush=True)\ntime.sleep(600)\n' },
      { entry: 'long.py', outputs: ['out/**'] },
    );
    peer.send({ type: 'job', job: j });
    await peer.waitFor((r) => r.msg.type === 'event' && JSON.stringify(r.msg).includes('"up\\n"'), 'the job to start');
    await w.stop();
    worker = undefined;
    const events = peer.uniqueEvents(j.jobId);
    const last = events[events.length - 1]!.body;
    assert.ok(last.type === 'status' && last.status === 'cancelled', JSON.stringify(last));
    assert.equal(last.reason, 'the worker is stopping');
    const art = events.find((e) => e.body.type === 'artifact');
    assert.ok(art && art.body.type === 'artifact');
    assert.equal(peer.uploads.get(art.body.artifact.sha256)?.toString(), 'partial');
  });
});
