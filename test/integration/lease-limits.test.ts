// Leases against their limits (issue 14, findings 4 and 13): a device is handed to the next renter
// only once the last job on it has ended and its processes are gone, and the next lease waits for
// it visibly and unbilled; renewals stop at the longest lease; impossible telemetry is clamped.
// A real broker on loopback, a real worker under its sandbox running real python3, and a scripted
// worker socket for what an honest worker never says.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BrokerClient } from '../../src/client/api';
import { startBroker, type RunningBroker } from '../../src/broker/server';
import { MAX_LEASE_HOURS, type JobEvent, type Lease } from '../../src/shared/protocol';
import { startWorker, type RunningWorker } from '../../src/worker/main';
import { hearth, waitFor } from './helpers';
import { finalStatus, follow, logOf } from './in-process-jobs';
import { jobProcesses } from './job-processes';
import { ScriptedWorker } from './scripted-worker';
import { uploadWorkspace } from '../../src/client/workspace';
import { backendFor } from '../backend';

const TEST_TMP = join(__dirname, '..', '..', '.test-tmp');

interface Net {
  dir: string;
  broker: RunningBroker;
  admin: BrokerClient;
}

async function startNet(): Promise<Net> {
  // Not under /tmp: the sandbox's tmpfs over /tmp would hide the workspaces.
  mkdirSync(TEST_TMP, { recursive: true });
  const dir = mkdtempSync(join(TEST_TMP, 'hearth-lease-limits-'));
  const dataDir = join(dir, 'broker');
  const broker = await startBroker({ ...(await backendFor(dataDir)), dataDir, port: 0, heartbeatMs: 500 });
  return { dir, broker, admin: new BrokerClient({ url: broker.url, token: broker.adminToken! }) };
}

async function renter(net: Net, name: string): Promise<{ client: BrokerClient; token: string }> {
  const { token } = await net.admin.createAccount(name);
  return { client: new BrokerClient({ url: net.broker.url, token }), token };
}

async function submitFiles(net: Net, client: BrokerClient, leaseId: string, files: Record<string, string>): Promise<string> {
  const ws = mkdtempSync(join(net.dir, 'ws-'));
  for (const [p, content] of Object.entries(files)) writeFileSync(join(ws, p), content);
  const manifest = await uploadWorkspace(client, ws);
  const entry = Object.keys(files)[0]!;
  return (await client.submitJob({ leaseId, entry, args: [], env: {}, outputs: [], logdir: 'runs', manifest: { files: manifest.files } })).id;
}

describe('leases: devices handed over only when free (issue 14, finding 4)', function () {
  this.timeout(180_000);
  let net: Net;
  let worker: RunningWorker;
  let workDir: string;
  before(async () => {
    net = await startNet();
    const { token } = await net.admin.createToken('worker', 'provider');
    workDir = join(net.dir, 'worker');
    worker = startWorker({
      brokerUrl: net.broker.url,
      token,
      workDir,
      name: 'shared-worker',
      nvidiaSmi: join(net.dir, 'no-nvidia-smi'),
      // Long: the first job ends when the test says so, never by the grace running out.
      killGraceMs: 600_000,
      python: '/usr/bin/python3',
      log: () => undefined,
    });
    await worker.workerId;
  });
  after(async () => {
    await worker?.stop();
    await net?.broker.close();
    rmSync(net.dir, { recursive: true, force: true });
  });

  it("a job that ignores SIGTERM keeps its device: the next renter's lease waits, unbilled, and runs only after its processes are gone", async () => {
    const alice = await renter(net, 'alice');
    const bob = await renter(net, 'bob');
    // Alice's job ignores SIGTERM and leaves when a file appears in its folder (the test's hand, not a clock).
    const stubborn = [
      'import os, signal, subprocess, time',
      'signal.signal(signal.SIGTERM, signal.SIG_IGN)',
      // A child that ignores SIGTERM too: it must be gone before the device is handed over.
      'subprocess.Popen(["python3", "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)"])',
      'print("stubborn and ready", flush=True)',
      'while not os.path.exists("go"): time.sleep(0.05)',
    ].join('\n');
    const aLease = await alice.client.createLease({ count: 1, hours: 1 });
    const aJob = await submitFiles(net, alice.client, aLease.id, { 's.py': stubborn });
    const aEvents: JobEvent[] = [];
    const aDone = follow({ dir: net.dir, client: alice.client }, aJob, (e) => aEvents.push(e));
    const release = () => writeFileSync(join(workDir, 'jobs', aJob, 'go'), '');
    let bLease: Lease;
    let bJob: string;
    try {
      await waitFor('alice\'s job running', () => (logOf(aEvents, 'stdout').includes('stubborn and ready') ? true : undefined));
      // Her lease ends (released here; a short lease expiring does the same): her job gets SIGTERM and ignores it.
      await alice.client.releaseLease(aLease.id);
      assert.equal((await alice.client.lease(aLease.id)).status, 'released');
      assert.ok(jobProcesses(aJob).length >= 2, 'alice\'s job and its child still run');

      // Bob leases the one device: his lease is made, and waits for it.
      bLease = await bob.client.createLease({ count: 1, hours: 1 });
      assert.deepEqual(bLease.gpuIndices, aLease.gpuIndices);
      assert.match(String(bLease.waitingFor), /^device 0, still held by the last job of an ended lease \(stopping\); not billed until it is free$/);
      bJob = await submitFiles(net, bob.client, bLease.id, { 'b.py': 'print("bob runs", flush=True)\n' });
      // The CLI says so.
      const shown = await hearth(['leases'], { HEARTH_BROKER_URL: net.broker.url, HEARTH_TOKEN: bob.token });
      assert.match(shown.stdout, new RegExp(`${bLease.id}\\s+waiting`));
      assert.match(shown.stdout, new RegExp(`waiting: ${bLease.id}: for device 0, still held`));
      // Still held while alice's job runs: nothing of bob's is dispatched, nothing billed.
      await waitFor('a notice that bob\'s job waits for the device', async () => {
        for await (const e of bob.client.events(bJob)) if (e.body.type === 'notice' && /waiting for the lease's device 0, still held by the last job of an ended lease/.test(e.body.message)) return true;
        return undefined;
      });
      const stillWaiting = await bob.client.lease(bLease.id);
      assert.ok(stillWaiting.waitingFor);
      assert.equal(stillWaiting.secondsUsed, 0);
      assert.equal(stillWaiting.cost, 0);
      assert.equal((await bob.client.job(bJob)).startedAt, null);
      assert.ok(jobProcesses(aJob).length >= 1, 'alice\'s job still runs while bob waits');
    } catch (err) {
      release(); // else the worker waits out its grace at the end
      throw err;
    }
    // Alice's job leaves: its processes go, the worker reports its end, and bob's lease starts.
    release();
    await aDone;
    const aEnd = aEvents.filter((e) => e.body.type === 'status').pop()!;
    const bEvents = await follow({ dir: net.dir, client: bob.client }, bJob);
    assert.equal(finalStatus(bEvents).status, 'succeeded');
    assert.match(logOf(bEvents, 'stdout'), /bob runs/);
    const bRunning = bEvents.find((e) => e.body.type === 'status' && e.body.status === 'running')!;
    assert.ok(bRunning.ts >= aEnd.ts, 'bob\'s job ran only after alice\'s had ended');
    assert.deepEqual(jobProcesses(aJob), [], 'alice\'s processes are gone');
    const started = await bob.client.lease(bLease.id);
    assert.equal(started.waitingFor, null);
    assert.ok(started.createdAt >= aEnd.ts, 'bob is billed from when the device was free');
  });
});

describe('leases: renewals and a worker\'s word (issue 14, finding 13)', function () {
  this.timeout(60_000);
  let net: Net;
  let w: ScriptedWorker;
  before(async () => {
    net = await startNet();
    const { token } = await net.admin.createToken('worker', 'scripted');
    w = new ScriptedWorker(net.broker.url, token);
    await w.connect({ gpus: [0, 1, 2].map((index) => ({ index, uuid: `gpu-${index}`, name: 'Scripted GPU', memoryTotalMiB: 1024, isGpu: true })) });
  });
  after(async () => {
    await w?.close();
    await net?.broker.close();
    rmSync(net.dir, { recursive: true, force: true });
  });

  it(`renewals do not stack past ${MAX_LEASE_HOURS} h`, async () => {
    const { client } = await renter(net, 'renewer');
    const lease = await client.createLease({ count: 1, hours: MAX_LEASE_HOURS - 20 });
    const renewed = await client.renewLease(lease.id, 10);
    assert.ok(renewed.expiresAt - renewed.createdAt <= MAX_LEASE_HOURS * 3_600_000);
    await assert.rejects(client.renewLease(lease.id, 15), /a lease lasts at most 720 h, renewals included: lease \S+ can be renewed by at most (9\.99|10) h more/);
    await assert.rejects(client.renewLease(lease.id, MAX_LEASE_HOURS), /at most 720 h/);
    const after = await client.lease(lease.id);
    assert.equal(after.expiresAt, renewed.expiresAt, 'a refused renewal changes nothing');
    const full = await client.createLease({ count: 1, hours: MAX_LEASE_HOURS });
    await assert.rejects(client.renewLease(full.id, 1), /can be renewed by at most 0 h more/);
  });

  it('telemetry that cannot be true (1e9 % utilisation, more memory used than there is) is clamped by the broker', async () => {
    const { client } = await renter(net, 'watcher');
    const lease = await client.createLease({ count: 1, hours: 1 });
    const jobId = (await client.submitJob({ leaseId: lease.id, entry: 't.py', args: [], env: {}, outputs: [], logdir: 'runs', manifest: { files: [] } })).id;
    await w.waitFor((m) => m.type === 'job' && m.job.jobId === jobId, 'the job');
    w.send({ type: 'job-accepted', jobId });
    w.event(jobId, 1, { type: 'status', status: 'running' });
    w.event(jobId, 2, {
      type: 'telemetry',
      gpus: [{ index: 0, utilizationPct: 1e9, memoryUsedMiB: 1e12, memoryTotalMiB: 1024, temperatureC: 1e6, powerW: -5 }],
    });
    w.event(jobId, 3, { type: 'status', status: 'succeeded', exitCode: 0 });
    const events: JobEvent[] = [];
    for await (const e of client.events(jobId, { follow: true })) events.push(e);
    const t = events.find((e) => e.body.type === 'telemetry');
    assert.ok(t && t.body.type === 'telemetry');
    assert.deepEqual(t.body.gpus[0], { index: 0, utilizationPct: 100, memoryUsedMiB: 1024, memoryTotalMiB: 1024, temperatureC: 150, powerW: 0 });
    assert.ok(existsSync(net.dir));
  });
});
