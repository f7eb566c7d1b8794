// What a renter can count on against a provider who changes their mind (issue 14, findings 5 and
// 6): a lease is made at the price the renter saw, and a cancelled session stops costing money a
// short grace later whatever its worker says. A scripted worker (a raw socket speaking the real
// protocol) plays the provider; the broker is real, on the test's backend.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { BrokerClient, BrokerError } from '../../src/client/api';
import { startBroker, type RunningBroker } from '../../src/broker/server';
import { backendFor } from '../backend';
import { waitFor } from './helpers';
import { ScriptedWorker } from './scripted-worker';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('market trust: price and cancel (integration)', function () {
  this.timeout(120_000);
  let dir: string;
  let broker: RunningBroker;
  let admin: BrokerClient;
  let renter: BrokerClient;
  let workerToken: string;
  const sockets: ScriptedWorker[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(os.tmpdir(), 'hearth-market-'));
    const dataDir = join(dir, 'broker');
    broker = await startBroker({ ...(await backendFor(dataDir)), dataDir, port: 0, meterMs: 100, cancelGraceMs: 500 });
    admin = new BrokerClient({ url: broker.url, token: broker.adminToken! });
    renter = new BrokerClient({ url: broker.url, token: (await admin.createAccount('renter')).token });
    const provider = new BrokerClient({ url: broker.url, token: (await admin.createAccount('provider')).token });
    workerToken = (await provider.createToken('worker', 'provider')).token;
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) await s.close();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function scripted(hello: Parameters<ScriptedWorker['connect']>[0] = {}): Promise<ScriptedWorker> {
    const s = new ScriptedWorker(broker.url, workerToken);
    sockets.push(s);
    await s.connect(hello);
    return s;
  }

  it('finding 5: a lease is made at the price the renter saw; a worker saying hello again at a new price gets a refusal, and changes no lease it has', async () => {
    const gpus = [0, 1].map((i) => ({ index: i, uuid: `cpu-${i}`, name: 'Scripted CPU', memoryTotalMiB: 1024, isGpu: false }));
    const w = await scripted({ pricePerHour: 1, gpus });
    const seen = (await renter.offers()).find((o) => o.workerId === w.workerId)!;
    assert.equal(seen.pricePerHour, 1);
    const first = await renter.createLease({ workerId: w.workerId, count: 1, pricePerHour: seen.pricePerHour });
    assert.equal(first.pricePerHour, 1);
    // The provider reconnects with the same id, asking a million credits an hour.
    await w.close();
    const again = await scripted({ workerId: w.workerId, gpus, pricePerHour: 1_000_000 });
    assert.equal(again.workerId, w.workerId);
    await waitFor('the new price in the offers', async () => ((await renter.offers()).find((o) => o.workerId === w.workerId)?.pricePerHour === 1_000_000 ? true : undefined));
    // The renter leases what it saw: refused, with the price as it is now, and nothing leased.
    await assert.rejects(
      renter.createLease({ workerId: w.workerId, count: 1, pricePerHour: seen.pricePerHour }),
      (e: BrokerError) => e.code === 'price_changed' && /1000000/.test(e.message) && /1 cr\/h|1 credits/.test(e.message),
    );
    assert.deepEqual((await renter.leases()).map((l) => l.id), [first.id]);
    // The lease it holds keeps its price, and a renewal too.
    assert.equal((await renter.lease(first.id)).pricePerHour, 1);
    assert.equal((await renter.renewLease(first.id, 1)).pricePerHour, 1);
    // Seeing the new price and accepting it leases at it.
    const now = await renter.createLease({ workerId: w.workerId, count: 1, pricePerHour: 1_000_000 });
    assert.equal(now.pricePerHour, 1_000_000);
  });

  it('finding 6: a cancelled session whose worker keeps saying running stops billing its lease after the grace', async () => {
    const w = await scripted({ pricePerHour: 3600 });
    const lease = await renter.createLease({ workerId: w.workerId, count: 1, hours: 1, pricePerHour: 3600 });
    const bytes = Buffer.from('import time\nwhile True: time.sleep(1)\n');
    await renter.putBlob(sha(bytes), bytes, bytes.length);
    const job = await renter.submitJob({
      leaseId: lease.id,
      entry: 'run.py',
      args: [],
      env: {},
      outputs: [],
      logdir: 'runs',
      releaseLease: true,
      manifest: { files: [{ path: 'run.py', sha256: sha(bytes), size: bytes.length, executable: false }] },
    });
    await w.waitFor((m) => m.type === 'job' && m.job.jobId === job.id, 'the job');
    w.send({ type: 'job-accepted', jobId: job.id });
    w.event(job.id, 1, { type: 'status', status: 'running' });
    await w.acked(job.id, 1);
    await renter.cancelJob(job.id);
    await w.waitFor((m) => m.type === 'cancel' && m.jobId === job.id, 'the cancel');
    // The worker ignores it and goes on saying the job runs.
    w.event(job.id, 2, { type: 'log', stream: 'stdout', data: 'still going\n' });
    w.heartbeat();
    const ended = await waitFor('the lease to end', async () => {
      const l = await renter.lease(lease.id);
      return l.status === 'active' ? undefined : l;
    }, 20_000);
    assert.equal(ended.status, 'released');
    assert.match(ended.endReason ?? '', /^cancelled/);
    assert.equal((await renter.job(job.id)).status, 'running', 'the worker still says running: the broker stopped billing without it');
    // Billing has stopped: more of the worker's talk adds nothing.
    w.event(job.id, 3, { type: 'log', stream: 'stdout', data: 'and going\n' });
    await w.acked(job.id, 3);
    assert.equal((await renter.lease(lease.id)).secondsUsed, ended.secondsUsed);
  });
});
