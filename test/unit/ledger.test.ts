// The ledger on a real database, through the broker's own domain: SQLite always, PostgreSQL too
// when HEARTH_TEST_DATABASE names one (scripts/test.sh does), where two replicas meter at once.
// Time is the metering pass's `now`, moved forward by the test: leases are billed up to it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBroker, type BrokerApp } from '../../src/broker/app';
import type { Principal } from '../../src/broker/broker';
import { escrowBook, renterBook, toMicro } from '../../src/broker/ledger';
import { freshDatabase, TEST_DATABASE } from '../backend';
import { prng } from './prng';
import { billedSeconds, costOfSeconds } from '../../src/broker/services/leases';


const offline = { isOnline: async () => true, dispatch: async () => undefined, cancel: async () => undefined, request: async () => undefined };

function ledgerSuite(backend: string, database: () => Promise<string | undefined>): void {
  describe(`ledger (${backend})`, function () {
    this.timeout(120_000);
    let dir: string;
    let url: string | undefined;
    let b: BrokerApp;
    const others: BrokerApp[] = [];

    async function broker(): Promise<BrokerApp> {
      // The test meters with its own clock, ahead of the real one; the timer's passes (real time)
      // may run between them, which the ledger must bear like any other replica's.
      const x = await buildBroker({ dataDir: dir, ...(url ? { database: url } : {}), credit: 'prepaid', meterMs: 1000 });
      x.broker.link = offline;
      return x;
    }
    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'hearth-ledger-'));
      url = await database();
      b = await broker();
    });
    afterEach(async () => {
      for (const o of others.splice(0)) await o.close();
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    });

    async function setup(prices = [60]) {
      const admin = (await b.broker.authenticate(b.adminToken))!;
      const provider = await b.broker.createAccount('provider');
      const workers: string[] = [];
      for (const [i, price] of prices.entries()) {
        const gpus = [0, 1, 2, 3].map((index) => ({ index, uuid: `u${i}-${index}`, name: `GPU${i}`, memoryTotalMiB: 1, isGpu: true }));
        workers.push(await b.broker.registerWorker(provider.accountId, { name: `w${i}`, hostname: `h${i}`, version: '1', gpus, pricePerHour: price }));
      }
      const renters: Principal[] = [];
      for (const name of ['r1', 'r2', 'r3']) {
        const a = await b.broker.createAccount(name);
        renters.push((await b.broker.authenticate(a.token))!);
      }
      return { admin, provider, workers, renters };
    }

    async function invariants(when: string) {
      const t = await b.ledger.totals();
      assert.equal(t.sum, 0, `${when}: the balances sum to ${t.sum}`);
      assert.equal(t.postings, t.keys, `${when}: a key was used twice`);
      for (const prefix of ['renter:', 'escrow:', 'earnings:', 'broker:']) {
        for (const bk of await b.broker.store.ledger.books(prefix)) assert.ok(bk.balance >= -bk.overdraft, `${when}: ${bk.book} is at ${bk.balance} with an overdraft of ${bk.overdraft}`);
      }
    }

    it('a grant posts once per key; a payment with no credit behind it is refused and changes nothing', async () => {
      const { renters } = await setup();
      const r = renters[0]!;
      assert.deepEqual(await b.ledger.credit(r.accountId, 5, 'k1', 'grant'), { applied: true, balance: 5 });
      assert.deepEqual(await b.ledger.credit(r.accountId, 5, 'k1', 'grant'), { applied: false, balance: 5 });
      const repo = b.broker.store.ledger;
      const res = await repo.apply({ postings: [{ key: 'x', from: renterBook(r.accountId), to: 'broker:fees', amount: toMicro(6), kind: 'adjust', at: 1 }] }, b.ledger.unlimited);
      assert.deepEqual(res, { insufficient: renterBook(r.accountId) });
      assert.equal((await repo.book(renterBook(r.accountId))).balance, toMicro(5));
      await b.ledger.setOverdraft(r.accountId, 1);
      assert.equal(await repo.apply({ postings: [{ key: 'x', from: renterBook(r.accountId), to: 'broker:fees', amount: toMicro(6), kind: 'adjust', at: 1 }] }, b.ledger.unlimited), 'applied');
      assert.equal((await repo.book(renterBook(r.accountId))).balance, toMicro(-1));
      await invariants('after the overdraft');
    });

    it('a renter with 1 credit cannot run an hour: the hour is refused, and a short lease renewed for an hour stops when the credit is spent', async () => {
      const { renters, workers } = await setup([60]); // 60 cr/h: 1 credit is a minute
      const r = renters[0]!;
      await b.ledger.credit(r.accountId, 1, 'one', 'grant');
      await assert.rejects(b.broker.createLease(r, { count: 1, hours: 1, workerId: workers[0] }), (e: Error & { code?: string }) => e.code === 'insufficient_balance' && /holds 60 cr in escrow/.test(e.message));
      const lease = await b.broker.createLease(r, { count: 1, hours: 0.01, workerId: workers[0] });
      await b.broker.renewLease(r, lease.id, 1);
      let now = lease.createdAt;
      let ended;
      for (let i = 0; i < 200 && !ended; i++) {
        now += 5_000;
        await b.meter(now);
        await invariants(`at +${(now - lease.createdAt) / 1000} s`);
        const l = await b.broker.leaseById(lease.id);
        if (l?.status !== 'active') ended = l;
      }
      assert.ok(ended, 'the lease ended');
      assert.ok(ended.endedAt! - lease.createdAt <= 60_000, `it ran ${(ended.endedAt! - lease.createdAt) / 1000} s`);
      assert.equal((await b.broker.store.spend.leaseLimits([lease.id])).get(lease.id)?.endReason, 'balance');
      await b.meter(now + 1000);
      const bal = await b.ledger.balance(r.accountId);
      assert.ok(bal.balance >= 0 && bal.held === 0, JSON.stringify(bal));
      await invariants('at the end');
    });

    it('property: random grants, leases, renewals, releases and refunds keep the books whole', async () => {
      const { renters, workers, provider } = await setup([60, 3600]);
      await b.ledger.setFee(0.1);
      const replicas = url ? [b, await broker()] : [b];
      if (url) others.push(replicas[1]!);
      const seen = { leases: 0, refused: 0, renewals: 0, releases: 0, refunds: 0, meters: 0 };
      for (const seed of [1, 2, 3]) {
        const rnd = prng(seed);
        const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
        let now = Date.now();
        const leases: { id: string; p: Principal }[] = [];
        const refundKeys: string[] = [];
        // the most each lease was billed at any pass (a release is stamped with the real clock,
        // behind the test's, so a lease's final cost can be below what it was metered at before)
        const billed = new Map<string, number>();
        for (let step = 0; step < 80; step++) {
          const op = rnd();
          const p = pick(renters);
          try {
            if (op < 0.15) await b.ledger.credit(p.accountId, Math.round(rnd() * 6000) + 1, `s${seed}-${step % 7}-${p.accountId}`, 'grant');
            else if (op < 0.4 && ++seen.leases) leases.push({ id: (await b.broker.createLease(p, { count: 1 + Math.floor(rnd() * 2), hours: rnd() < 0.2 ? 0.002 : rnd() * 3 + 0.1, workerId: pick(workers) })).id, p });
            else if (op < 0.5 && leases.length) {
              const l = pick(leases);
              await b.broker.renewLease(l.p, l.id, rnd() * 2);
              seen.renewals++;
            } else if (op < 0.58 && leases.length) {
              const l = pick(leases);
              await b.broker.releaseLease(l.p, l.id);
              seen.releases++;
            } else if (op < 0.66 && leases.length) {
              const l = pick(leases);
              const key = refundKeys.length && rnd() < 0.5 ? pick(refundKeys) : `rf-${seed}-${step}`;
              refundKeys.push(key);
              if ((await b.ledger.refund(l.id, rnd() * 5, key, 'test refund')).applied) seen.refunds++;
            } else {
              now += Math.floor(rnd() * 60_000) + 1000;
              // Two replicas meter at once (PostgreSQL): each second is still posted once.
              await Promise.all(replicas.map((x) => x.meter(now)));
              seen.meters++;
              for (const l of leases) {
                const row = (await b.broker.store.leases.get(l.id))!;
                billed.set(l.id, Math.max(billed.get(l.id) ?? 0, costOfSeconds(row, billedSeconds(row, now))));
              }
            }
          } catch (err) {
            const code = (err as { code?: string }).code;
            if (code === 'insufficient_balance') seen.refused++;
            if (!['insufficient_balance', 'no_capacity', 'lease_ended', 'insufficient_earnings'].includes(code ?? '')) throw err;
          }
          await invariants(`seed ${seed} step ${step}`);
          // No lease was metered for more than it cost.
          for (const l of leases) {
            const metered = (await b.broker.store.ledger.ledgerLease(l.id))!.metered;
            // (the timer's passes meter by the real clock)
            const row = (await b.broker.store.leases.get(l.id))!;
            const billedUpTo = Math.max(billed.get(l.id) ?? 0, costOfSeconds(row, billedSeconds(row, Date.now())));
            assert.ok(metered <= toMicro(billedUpTo) + 1, `seed ${seed} step ${step}: ${l.id} metered ${metered} µcr for ${billedUpTo} cr ${JSON.stringify(row)} now=${now} ${JSON.stringify(await b.broker.store.ledger.postings({ books: [], leaseIds: [l.id], limit: 100 }))}`);
          }
        }
        // Everything released and metered: no escrow is left, and what renters paid is what the provider and the fee got (less refunds).
        for (const l of leases) await b.broker.releaseLease(l.p, l.id).catch(() => undefined);
        await b.meter(now + 1000);
        for (const l of leases) assert.equal((await b.broker.store.ledger.book(escrowBook(l.id))).balance, 0, `escrow of ${l.id}`);
        await invariants(`seed ${seed}: all released`);
        void provider;
      }
      assert.ok(seen.leases > 10 && seen.refused > 0 && seen.renewals > 0 && seen.releases > 0 && seen.refunds > 0 && seen.meters > 20, `too little exercised: ${JSON.stringify(seen)}`);
    });
  });
}

ledgerSuite('SQLite', async () => undefined);
if (TEST_DATABASE) ledgerSuite('PostgreSQL', freshDatabase);
