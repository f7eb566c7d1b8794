// The spend controls' repository on a real SQLite database, rows made through the broker's own
// domain. The suite takes the repository as a parameter so another backend can run it as well.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBroker, type BrokerApp } from '../../src/broker/app';
import { SqliteSpendRepository, type SpendRepository } from '../../src/broker/store/spend-repository';

function spendRepositorySuite(backend: string, make: (b: BrokerApp) => SpendRepository): void {
  describe(`spend repository (${backend})`, () => {
    let dir: string;
    let b: BrokerApp;
    let repo: SpendRepository;

    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'hearth-spend-repo-'));
      b = await buildBroker({ dataDir: dir });
      // No worker is connected here: offers need one online, so the link says it is.
      b.broker.link = { isOnline: () => true, dispatch: () => undefined, cancel: () => undefined, request: () => undefined };
      repo = make(b);
    });
    afterEach(async () => {
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    });

    function setup() {
      const admin = b.broker.authenticate(b.adminToken)!;
      const gpus = [0, 1, 2].map((index) => ({ index, uuid: `u${index}`, name: 'GPU', memoryTotalMiB: 1, isGpu: true }));
      const workerId = b.broker.registerWorker(admin.accountId, { name: 'w', hostname: 'h', version: '1', gpus, pricePerHour: 1 });
      const sha = 'a'.repeat(64);
      b.broker.recordBlob(sha, 1, admin.accountId);
      const lease = () => b.broker.createLease(admin, { count: 1, hours: 1, workerId });
      const submit = (leaseId: string) =>
        b.broker.submitJob(admin, { leaseId, entry: 'x.py', args: [], env: {}, outputs: [], logdir: 'runs', manifest: { files: [{ path: 'x.py', sha256: sha, size: 1, executable: false }] } });
      return { admin, lease, submit };
    }

    it('keeps a lease\'s limits, warning and first end reason', async () => {
      const { lease } = setup();
      const l = lease();
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
      const { lease, submit, admin } = setup();
      const [capped, idle, plain] = [lease(), lease(), lease()];
      await repo.setLeaseLimits(capped.id, 5, null);
      await repo.setLeaseLimits(idle.id, null, 1000);
      await repo.setLeaseWarning(plain.id, 'a warning alone is not a reason to watch');
      const job = submit(capped.id);
      let watched = await repo.watchedLeases();
      assert.deepEqual(watched.map((w) => [w.leaseId, w.busy, w.lastJobEndedAt, w.accountId]).sort(), [
        [capped.id, true, null, admin.accountId],
        [idle.id, false, null, admin.accountId],
      ].sort());
      assert.deepEqual(await repo.openJobIds(capped.id), [job.id]);
      b.broker.cancelJob(admin, job.id);
      watched = await repo.watchedLeases();
      const c = watched.find((w) => w.leaseId === capped.id)!;
      assert.equal(c.busy, false);
      assert.equal(typeof c.lastJobEndedAt, 'number');
      assert.deepEqual(await repo.openJobIds(capped.id), []);
      b.broker.releaseLease(admin, idle.id);
      assert.deepEqual((await repo.watchedLeases()).map((w) => w.leaseId), [capped.id], 'an ended lease is not watched');
    });

    it('keeps an account\'s limit, warns once a period, and finds its leases of a period', async () => {
      const { lease, admin } = setup();
      assert.equal(await repo.accountLimit(admin.accountId), undefined);
      assert.deepEqual(await repo.limitedAccountsWithActiveLeases(), []);
      await repo.setAccountLimit(admin.accountId, 10);
      assert.deepEqual(await repo.limitedAccountsWithActiveLeases(), [], 'no active lease, nothing to watch');
      const [old, now] = [lease(), lease()];
      b.broker.releaseLease(admin, old.id);
      await repo.setAccountWarned(admin.accountId, 123);
      assert.deepEqual(await repo.limitedAccountsWithActiveLeases(), [{ accountId: admin.accountId, spendLimit: 10, warnedPeriod: 123 }]);
      await repo.setAccountLimit(admin.accountId, 20);
      assert.deepEqual(await repo.accountLimit(admin.accountId), { accountId: admin.accountId, spendLimit: 20, warnedPeriod: null }, 'a new limit gets its own warning');
      const ended = b.broker.leaseById(old.id)!.endedAt!;
      assert.deepEqual((await repo.leaseIdsSince(admin.accountId, ended - 1)).sort(), [old.id, now.id].sort());
      assert.deepEqual(await repo.leaseIdsSince(admin.accountId, ended), [now.id], 'a lease that ended before the period is not counted');
      assert.deepEqual(await repo.activeLeaseIds(admin.accountId), [now.id]);
      await repo.setAccountLimit(admin.accountId, null);
      assert.deepEqual(await repo.limitedAccountsWithActiveLeases(), []);
    });
  });
}

spendRepositorySuite('SQLite', (b) => new SqliteSpendRepository(b.broker.db));
