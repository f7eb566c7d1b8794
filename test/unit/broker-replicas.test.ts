// What replicas share through PostgreSQL, on a real database: periodic work runs once across
// them, and a commit on one wakes the followers of the other. Runs only on PostgreSQL
// (HEARTH_TEST_DATABASE).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { buildBroker, type BrokerApp } from '../../src/broker/app';
import { openPostgresStore } from '../../src/broker/store/postgres/index';
import type { Store } from '../../src/broker/store/store';
import { freshDatabase, TEST_DATABASE } from '../backend';

/** Replicas share one secrets key (each would make its own in its data dir otherwise). */
function sharedKey(dir: string): string {
  const f = join(dir, 'shared-secrets.key');
  if (!existsSync(f)) writeFileSync(f, randomBytes(32).toString('hex'), { mode: 0o600 });
  return f;
}

describe('broker replicas on one PostgreSQL database', function () {
  this.timeout(60_000);
  before(function () {
    if (!TEST_DATABASE) this.skip();
  });

  it('periodic work runs on one replica at a time, and once per period across them', async () => {
    const url = (await freshDatabase())!;
    const stores: Store[] = [];
    for (let i = 0; i < 3; i++) stores.push(await openPostgresStore(url));
    try {
      let running = 0;
      let overlaps = 0;
      const ranOn: string[] = [];
      // 3 replicas × 10 ticks each, all at once, with a period far longer than the test.
      await Promise.all(
        stores.flatMap((s) =>
          Array.from({ length: 10 }, () =>
            s.runExclusive('test-sweep', 3_600_000, async () => {
              if (running++ > 0) overlaps++;
              ranOn.push(s.replicaId);
              await new Promise((r) => setTimeout(r, 20));
              running--;
            }),
          ),
        ),
      );
      assert.equal(overlaps, 0);
      assert.equal(ranOn.length, 1, `ran ${ranOn.length} times: ${ranOn.join(', ')}`);
      // Another name is other work: it runs too.
      assert.equal(await stores[1]!.runExclusive('other', 3_600_000, async () => {}), true);
    } finally {
      for (const s of stores) await s.close();
    }
  });

  it('an event appended on one replica wakes a follower waiting on the other', async () => {
    const url = (await freshDatabase())!;
    const dirs = [mkdtempSync(join(tmpdir(), 'hearth-rep-a-')), mkdtempSync(join(tmpdir(), 'hearth-rep-b-'))];
    const apps: BrokerApp[] = [];
    try {
      for (const d of dirs) apps.push(await buildBroker({ dataDir: d, database: url, secretsKeyFile: sharedKey(dirs[0]!) }));
      const [a, b] = apps as [BrokerApp, BrokerApp];
      const token = a.adminToken ?? b.adminToken;
      const admin = (await b.broker.authenticate(token))!;
      for (const x of apps) x.broker.link = { isOnline: async () => true, dispatch: async () => {}, cancel: async () => {}, request: async () => {} };
      const workerId = await a.broker.registerWorker(admin.accountId, { name: 'w', hostname: 'h', version: '1', gpus: [{ index: 0, uuid: 'u', name: 'GPU', memoryTotalMiB: 1, isGpu: true }], pricePerHour: 1 });
      const sha = 'b'.repeat(64);
      await a.broker.recordBlob(sha, 1, admin.accountId);
      const lease = await a.broker.createLease(admin, { count: 1, hours: 1, workerId });
      const job = await a.broker.submitJob(admin, { leaseId: lease.id, entry: 'x.py', args: [], env: {}, outputs: [], logdir: 'runs', manifest: { files: [{ path: 'x.py', sha256: sha, size: 1, executable: false }] } });
      const before = (await b.broker.events.job(job.id))!.last_seq;
      // A long wait on B, which only a notification from A can end early.
      let awake = false;
      const woke = b.broker.events.waitFor(job.id, before, 3_600_000, new AbortController().signal).then(() => (awake = true));
      // Let the waiter read the job and settle into waiting first (else it would see the append by reading).
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(awake, false);
      await a.broker.events.append(job.id, { type: 'log', stream: 'stdout', data: 'hello\n' });
      await woke;
      const rows = await b.broker.events.readRaw(job.id, before);
      assert.equal(rows.length, 1);
      assert.match(rows[0]!.body, /hello/);
    } finally {
      for (const x of apps) await x.close();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    }
  });

  it('the spend controls meter on one replica at a time: both wait while another holds the metering, then one ends a lease at its cap', async () => {
    const url = (await freshDatabase())!;
    const dirs = [mkdtempSync(join(tmpdir(), 'hearth-rep-a-')), mkdtempSync(join(tmpdir(), 'hearth-rep-b-'))];
    const apps: BrokerApp[] = [];
    // Stands in for a third replica in the middle of a metering pass: it holds runExclusive's lock.
    const holder = postgres(url, { max: 1, onnotice: () => {} });
    try {
      for (const d of dirs) apps.push(await buildBroker({ dataDir: d, database: url, meterMs: 20, secretsKeyFile: sharedKey(dirs[0]!) }));
      const [a, b] = apps as [BrokerApp, BrokerApp];
      const admin = (await b.broker.authenticate(a.adminToken ?? b.adminToken))!;
      for (const x of apps) x.broker.link = { isOnline: async () => true, dispatch: async () => {}, cancel: async () => {}, request: async () => {} };
      const gpus = [{ index: 0, uuid: 'u', name: 'GPU', memoryTotalMiB: 1, isGpu: true }];
      const workerId = await a.broker.registerWorker(admin.accountId, { name: 'w', hostname: 'h', version: '1', gpus, pricePerHour: 3600 });
      const conn = await holder.reserve();
      await conn`SELECT pg_advisory_lock(hashtext('hearth:meter'))`;
      const lease = await a.broker.createLease(admin, { count: 1, hours: 1, workerId });
      // 1 credit a second: past this cap at once.
      await a.broker.store.spend.setLeaseLimits(lease.id, 0.001, null);
      // Many metering periods of both replicas go by: neither may meter while the lock is held.
      await new Promise((r) => setTimeout(r, 500));
      assert.equal((await b.broker.leaseById(lease.id))!.status, 'active', 'a replica metered while another held the metering');
      await conn`SELECT pg_advisory_unlock(hashtext('hearth:meter'))`;
      conn.release();
      for (let i = 0; i < 500 && (await b.broker.leaseById(lease.id))!.status === 'active'; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal((await b.broker.leaseById(lease.id))!.status, 'released');
      assert.equal((await b.broker.store.spend.leaseLimits([lease.id])).get(lease.id)?.endReason, 'lease_cap');
      const [tick] = await holder<{ replica: string }[]>`SELECT replica FROM ticks WHERE name = 'meter'`;
      assert.ok([a.broker.store.replicaId, b.broker.store.replicaId].includes(tick!.replica));
    } finally {
      await holder.end({ timeout: 1 });
      for (const x of apps) await x.close();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    }
  });
});
