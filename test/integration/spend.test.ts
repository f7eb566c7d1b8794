// Spend controls with a real broker, a real worker and real python3: a lease's cost cap, an
// account's monthly limit across two leases, the idle release, and the CLI's flags for them. The
// worker's price (3600 cr/h, 1 cr a second per device) makes the caps come within seconds (each
// cap is ten or more metered seconds, so the 80% warning has a second of its own), and
// the broker meters every 100 ms (`meterMs`). The recorded nvidia-smi output stands in for the
// two GPUs this machine lacks (test/fixtures/nvidia-smi/fake-nvidia-smi), so two leases can run at
// once. Nothing here asserts on time: only on what arrived, in what order, and why things ended.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { BrokerClient, BrokerError } from '../../src/client/api';
import { uploadWorkspace } from '../../src/client/workspace';
import { startBroker, type RunningBroker } from '../../src/broker/server';
import { backendFor } from '../backend';
import type { JobEvent, Manifest } from '../../src/shared/protocol';
import { startWorker, type RunningWorker } from '../../src/worker/main';
import { hearth, waitFor } from './helpers';

const FAKE_SMI = join(__dirname, '..', 'fixtures', 'nvidia-smi', 'fake-nvidia-smi');
/** a job that runs until it is stopped, printing as it goes */
const FOREVER = 'import time\nwhile True:\n    print("step", flush=True)\n    time.sleep(0.2)\n';

describe('spend controls (integration)', function () {
  this.timeout(120_000);
  let dir: string;
  let broker: RunningBroker;
  let worker: RunningWorker;
  let admin: BrokerClient;
  let manifest: Manifest;

  before(async () => {
    dir = mkdtempSync(join(os.tmpdir(), 'hearth-spend-'));
    broker = await startBroker({ ...(await backendFor(join(dir, 'broker'))), dataDir: join(dir, 'broker'), port: 0, meterMs: 100 });
    admin = new BrokerClient({ url: broker.url, token: broker.adminToken! });
    const { token } = await admin.createToken('worker', 'spend');
    worker = startWorker({ brokerUrl: broker.url, token, workDir: join(dir, 'work'), name: 'pricey', nvidiaSmi: FAKE_SMI, pricePerHour: 3600, killGraceMs: 2000, log: () => undefined });
    await worker.workerId;
    const ws = join(dir, 'ws');
    mkdirSync(ws);
    writeFileSync(join(ws, 'forever.py'), FOREVER);
    writeFileSync(join(ws, 'short.py'), 'import time\ntime.sleep(1)\nprint("done")\n');
    manifest = { files: (await uploadWorkspace(admin, ws)).files };
  });
  after(async () => {
    await worker?.stop();
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function submit(client: BrokerClient, leaseId: string, entry: string): Promise<string> {
    return (await client.submitJob({ leaseId, entry, args: [], env: {}, outputs: [], logdir: 'runs', manifest })).id;
  }
  async function follow(client: BrokerClient, jobId: string): Promise<JobEvent[]> {
    const events: JobEvent[] = [];
    for await (const e of client.events(jobId, { follow: true })) events.push(e);
    return events;
  }
  const warningIndex = (events: JobEvent[], re: RegExp) => events.findIndex((e) => e.body.type === 'notice' && e.body.level === 'warning' && re.test(e.body.message));
  const endIndex = (events: JobEvent[]) => events.findIndex((e) => e.body.type === 'status' && ['cancelled', 'failed', 'succeeded', 'lost'].includes(e.body.status));

  it('a lease at its cost cap ends and its job stops with lease_cap, after a warning at 80%', async () => {
    const lease = await admin.createLease({ count: 1, maxCost: 10 });
    assert.equal(lease.maxCost, 10);
    const job = await submit(admin, lease.id, 'forever.py');
    const events = await follow(admin, job);
    const warned = warningIndex(events, /^spend: \d+% of the lease's cost cap of 10 cr used/);
    const end = endIndex(events);
    assert.ok(warned >= 0, `no warning in ${JSON.stringify(events.map((e) => e.body))}`);
    assert.ok(warned < end, 'the warning comes before the job stops');
    const status = events[end]!.body;
    assert.ok(status.type === 'status');
    assert.equal(status.status, 'cancelled');
    assert.match(status.reason ?? '', /^lease_cap: lease lease_\w+ reached its cost cap of 10 cr/);
    assert.ok(events.some((e) => e.body.type === 'log' && e.body.data.includes('step')), 'the job ran before it was stopped');
    const after = await admin.lease(lease.id);
    assert.equal(after.status, 'released');
    assert.equal(after.endReason, 'lease_cap');
    assert.equal(after.cost, 10, 'the renter pays the cap, not a second more');
    assert.match(after.spendWarning ?? '', /cost cap of 10 cr/);
  });

  it('an account limit counts all its leases: two leases at once both end with spend_limit, after a warning', async () => {
    const acct = await admin.createAccount('renter-two-leases', 12);
    const renter = new BrokerClient({ url: broker.url, token: acct.token });
    manifest = { files: (await uploadWorkspace(renter, join(dir, 'ws'))).files };
    const a = await renter.createLease({ count: 1 });
    const b = await renter.createLease({ count: 1 });
    const jobs = [await submit(renter, a.id, 'forever.py'), await submit(renter, b.id, 'forever.py')];
    const logs = await Promise.all(jobs.map((j) => follow(renter, j)));
    for (const events of logs) {
      const warned = warningIndex(events, /^spend: \d+% of the account's monthly spend limit of 12 cr used/);
      const end = endIndex(events);
      assert.ok(warned >= 0 && warned < end, `warning then stop: ${JSON.stringify(events.map((e) => e.body))}`);
      const status = events[end]!.body;
      assert.ok(status.type === 'status');
      assert.match(status.reason ?? '', /^spend_limit: the account reached its monthly spend limit of 12 cr/);
    }
    for (const id of [a.id, b.id]) assert.equal((await renter.lease(id)).endReason, 'spend_limit');
    const spend = await renter.accountSpend();
    assert.equal(spend.spendLimit, 12);
    assert.equal(spend.period, 'month');
    assert.ok(spend.spent >= 12, `spent ${spend.spent}`);
    // Past the limit, a new lease is refused and says why; raising the limit lets the renter lease again.
    await assert.rejects(renter.createLease({ count: 1 }), (e: BrokerError) => e.code === 'spend_limit' && /monthly limit of 12 cr/.test(e.message));
    await renter.setSpendLimit(1000);
    await renter.releaseLease((await renter.createLease({ count: 1 })).id);
    // The admin's account has no limit and is untouched by the renter's.
    assert.equal((await admin.accountSpend()).spendLimit, null);
  });

  it('releases a lease nothing has run on for its idle time, and not while a job runs', async () => {
    // 0.005 min = 300 ms: shorter than the job, which must run to its end all the same.
    const lease = await admin.createLease({ count: 1, idleReleaseMinutes: 0.005 });
    assert.equal(lease.idleReleaseMinutes, 0.005);
    const job = await submit(admin, lease.id, 'short.py');
    const events = await follow(admin, job);
    const status = events[endIndex(events)]!.body;
    assert.ok(status.type === 'status');
    assert.equal(status.status, 'succeeded', JSON.stringify(status));
    const ended = await waitFor('the idle release', async () => {
      const l = await admin.lease(lease.id);
      return l.status === 'active' ? undefined : l;
    });
    assert.equal(ended.status, 'released');
    assert.equal(ended.endReason, 'idle_release');
  });

  it('a live kernel holds its lease however idle; the lease\'s idle time counts from when the kernel stopped', async () => {
    const lease = await admin.createLease({ count: 1, idleReleaseMinutes: 0.005 });
    // The kernel's own idle stop (3 s) is far longer than the lease's idle release (300 ms).
    const k = await admin.startKernel({ leaseId: lease.id, idleMinutes: 0.05 });
    const ended = await waitFor('the kernel to stop by its own idle time', async () => {
      const j = await admin.job(k.id);
      return ['succeeded', 'failed', 'cancelled', 'lost'].includes(j.status) ? j : undefined;
    }, 90_000, 100);
    assert.equal(ended.status, 'succeeded', `the kernel ended ${ended.status}: ${ended.reason ?? ''}`);
    const l = await waitFor('the idle release', async () => {
      const x = await admin.lease(lease.id);
      return x.status === 'active' ? undefined : x;
    });
    assert.equal(l.endReason, 'idle_release');
  });

  it('the CLI: lease --max-cost/--idle-release, run --max-cost stops at the cap, account limit', async () => {
    const env = { HEARTH_BROKER_URL: broker.url, HEARTH_TOKEN: broker.adminToken!, HEARTH_DATA_DIR: join(dir, 'cli') };
    const leased = await hearth(['lease', '--max-cost', '100', '--idle-release', '30', '--hours', '2'], env);
    assert.equal(leased.code, 0, leased.stderr);
    assert.match(leased.stderr, /\(NVIDIA H100 80GB HBM3 · 3600 cr\/h · 2 h = 7200 cr; cap 100 cr, idle release 30 min\)/);
    const leases = await hearth(['leases'], env);
    assert.match(leases.stdout, new RegExp(`${leased.stdout.trim()}.*cap 100 cr, idle release 30 min`));
    // On a lease it did not take, run says which and at what price, cap included.
    const on = await hearth(['run', join(dir, 'ws', 'short.py'), '--lease', leased.stdout.trim()], env);
    assert.equal(on.code, 0, on.stderr);
    assert.match(on.stderr.split('\n')[1]!, new RegExp(`^hearth: on lease ${leased.stdout.trim()} \\(1× NVIDIA H100 80GB HBM3 on pricey at 3600 credits/h per device, capped at 100 cr\\)$`));
    await admin.releaseLease(leased.stdout.trim());
    const ended = await hearth(['leases', '--all'], env);
    assert.match(ended.stdout, new RegExp(`${leased.stdout.trim()}\\s+released\\s`));

    const bad = await hearth(['lease', '--max-cost', 'lots'], env);
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /--max-cost: .*"lots"/);

    const run = await hearth(['run', join(dir, 'ws', 'forever.py'), '--max-cost', '10'], env);
    assert.equal(run.code, 124, 'a lease that ran out of money exits as one that ran out of time');
    assert.match(run.stderr, /leased (lease_\w+) for this run \(1× NVIDIA H100 80GB HBM3 on pricey at 3600 credits\/h per device, capped at 10 cr\)/);
    const warn = run.stderr.search(/hearth: warning: spend: \d+% of the lease's cost cap of 10 cr used/);
    const stop = run.stderr.search(/hearth: job cancelled( \(SIGTERM\))?: lease_cap: lease lease_\w+ reached its cost cap of 10 cr/);
    assert.ok(warn >= 0 && stop > warn, run.stderr);

    const limit = await hearth(['account', 'limit', '--spend', '50000'], env);
    assert.equal(limit.code, 0, limit.stderr);
    assert.match(limit.stdout, /^spent [\d.]+ cr of 50000 cr this month \(UTC; counts again from \d{4}-\d{2}-01\)/);
    assert.equal((await hearth(['account', 'limit', '--spend', 'none'], env)).code, 0);
    assert.equal((await admin.accountSpend()).spendLimit, null);
  });
});
