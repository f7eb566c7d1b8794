// The spend controls' repository on a real database, rows made through the broker's own domain:
// SQLite always, PostgreSQL too when HEARTH_TEST_DATABASE names one (scripts/test.sh does).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBroker, type BrokerApp } from '../../src/broker/app';
import type { SpendRepository } from '../../src/broker/store/spend-repository';
import { freshDatabase, TEST_DATABASE } from '../backend';

function spendRepositorySuite(backend: string, database: () => Promise<string | undefined>, make: (b: BrokerApp) => SpendRepository): void {
  describe(`spend repository (${backend})`, () => {
    let dir: string;
    let b: BrokerApp;
    let repo: SpendRepository;

    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'hearth-spend-repo-'));
      const url = await database();
      b = await buildBroker({ dataDir: dir, ...(url ? { database: url } : {}) });
      // No worker is connected here: offers need one online, so the link says it is.
      b.broker.link = { isOnline: async () => true, dispatch: async () => undefined, cancel: async () => undefined, request: async () => undefined };
      repo = make(b);
    });
    afterEach(async () => {
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    });

    async function setup() {
      const admin = (await b.broker.authenticate(b.adminToken))!;
      const gpus = [0, 1, 2].map((index) => ({ index, uuid: `u${index}`, name: 'GPU', memoryTotalMiB: 1, isGpu: true }));
      const workerId = await b.broker.registerWorker(admin.accountId, { name: 'w', hostname: 'h', version: '1', gpus, pricePerHour: 1 });
      const sha = 'a'.repeat(64);
      await b.broker.recordBlob(sha, 1, admin.accountId);
      const lease = () => b.broker.createLease(admin, { count: 1, hours: 1, workerId });
      const submit = (leaseId: string) =>
        b.broker.submitJob(admin, { leaseId, entry: 'x.py', args: [], env: {}, outputs: [], logdir: 'runs', manifest: { files: [{ path: 'x.py', sha256: sha, size: 1, executable: false }] } });
      return { admin, lease, submit };
    }

    it('keeps a lease\'s limits, warning and first end reason', async () => {
      const { lease } = await setup();
      const l = await lease();
      await repo.setLeaseLimits(l.id, 5, null);
      await repo.setLeaseWarning(l.id, 'near');
      await repo.setLeaseLimits(l.id, 6, 60_000);
      await repo.setEndReason(l.id, 'lease_cap');
      await repo.setEndReason(l.id, 'released');
      const got = (await repo.leaseLimits([l.id, 'lease_none']));
      assert.deepEqual([...got.values()], [{ leaseId: l.id, maxCost: 6, idleReleaseMs: 60_000, warning: 'near', endReason: 'lease_cap' }]);
      assert.deepEqual(await repo.leaseLimits([]), new Map());
    });

    it('watches active leases with a cap or an idle release, saying whether something runs on them', async () => {
      const { lease, submit, admin } = await setup();
      const [capped, idle, plain] = [await lease(), await lease(), await lease()];
      await repo.setLeaseLimits(capped.id, 5, null);
      await repo.setLeaseLimits(idle.id, null, 1000);
      await repo.setLeaseWarning(plain.id, 'a warning alone is not a reason to watch');
      const job = await submit(capped.id);
      let watched = await repo.watchedLeases();
      assert.deepEqual(watched.map((w) => [w.leaseId, w.busy, w.lastJobEndedAt, w.accountId]).sort(), [
        [capped.id, true, null, admin.accountId],
        [idle.id, false, null, admin.accountId],
      ].sort());
      assert.deepEqual(await repo.openJobIds(capped.id), [job.id]);
      await b.broker.cancelJob(admin, job.id);
      watched = await repo.watchedLeases();
      const c = watched.find((w) => w.leaseId === capped.id)!;
      assert.equal(c.busy, false);
      assert.equal(typeof c.lastJobEndedAt, 'number');
      assert.deepEqual(await repo.openJobIds(capped.id), []);
      await b.broker.releaseLease(admin, idle.id);
      assert.deepEqual((await repo.watchedLeases()).map((w) => w.leaseId), [capped.id], 'an ended lease is not watched');
    });

    it('keeps an account\'s limit, warns once a period, and finds its leases of a period', async () => {
      const { lease, admin } = await setup();
      assert.equal(await repo.accountLimit(admin.accountId), undefined);
      assert.deepEqual(await repo.limitedAccountsWithActiveLeases(), []);
      await repo.setAccountLimit(admin.accountId, 10);
      assert.deepEqual(await repo.limitedAccountsWithActiveLeases(), [], 'no active lease, nothing to watch');
      const [old, now] = [await lease(), await lease()];
      await b.broker.releaseLease(admin, old.id);
      await repo.setAccountWarned(admin.accountId, 123);
      assert.deepEqual(await repo.limitedAccountsWithActiveLeases(), [{ accountId: admin.accountId, spendLimit: 10, warnedPeriod: 123 }]);
      await repo.setAccountLimit(admin.accountId, 20);
      assert.deepEqual(await repo.accountLimit(admin.accountId), { accountId: admin.accountId, spendLimit: 20, warnedPeriod: null }, 'a new limit gets its own warning');
      const ended = (await b.broker.leaseById(old.id))!.endedAt!;
      assert.deepEqual((await repo.leaseIdsSince(admin.accountId, ended - 1)).sort(), [old.id, now.id].sort());
      assert.deepEqual(await repo.leaseIdsSince(admin.accountId, ended), [now.id], 'a lease that ended before the period is not counted');
      assert.deepEqual(await repo.activeLeaseIds(admin.accountId), [now.id]);
      await repo.setAccountLimit(admin.accountId, null);
      assert.deepEqual(await repo.limitedAccountsWithActiveLeases(), []);
    });
  });
}

spendRepositorySuite('SQLite', async () => undefined, (b) => {
  assert.equal(b.broker.store.kind, 'sqlite');
  return b.broker.store.spend;
});
if (TEST_DATABASE) {
  spendRepositorySuite('PostgreSQL', freshDatabase, (b) => {
    assert.equal(b.broker.store.kind, 'postgres');
    return b.broker.store.spend;
  });
}
