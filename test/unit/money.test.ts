// The texts that tell a renter what a lease costs and what a release stops, and the period maths
// of the account's spend limit.
import assert from 'node:assert/strict';
import { costSince, monthOf } from '../../src/broker/spend';
import { hoursPriceMessage, jobsOnLease, parseHours, releaseWarning } from '../../src/extension/commands/lease-texts';
import { costNow } from '../../src/extension/views/format';
import { accountSpendText, credits, leaseLimitsText, leasePriceText } from '../../src/shared/money';
import { CreateAccountBody, CreateLeaseBody, SetSpendLimitBody, type Job, type Lease } from '../../src/shared/protocol';

const job = (over: Partial<Job>): Job => ({
  id: 'job_a',
  kind: 'job',
  leaseId: 'lease_1',
  workerId: 'wrk_1',
  entry: 'train.py',
  status: 'running',
  createdAt: 1,
  startedAt: 2,
  endedAt: null,
  exitCode: null,
  reason: null,
  lastSeq: 3,
  ...over,
});

describe('money texts', () => {
  it('prints credits without trailing zeros', () => {
    assert.equal(credits(10), '10 cr');
    assert.equal(credits(2.5), '2.5 cr');
    assert.equal(credits(0.0125), '0.0125 cr');
    assert.equal(credits(1234.56), '1235 cr');
  });

  it('says the price per hour and the cost of the hours asked', () => {
    assert.equal(leasePriceText({ gpuModel: 'A100', pricePerHour: 2.5 }, 4), 'A100 · 2.5 cr/h · 4 h = 10 cr');
    assert.equal(leasePriceText({ gpuModel: 'H100', pricePerHour: 3, count: 2 }, 0.5), '2× H100 · 3 cr/h each · 0.5 h = 3 cr');
    assert.equal(hoursPriceMessage({ gpuModel: 'A100', pricePerHour: 2.5 }, '4'), 'A100 · 2.5 cr/h · 4 h = 10 cr');
    assert.equal(hoursPriceMessage({ gpuModel: 'A100', pricePerHour: 2.5 }, 'four'), undefined);
    for (const bad of ['', ' ', '0', '-1', '721', 'NaN']) assert.equal(parseHours(bad), undefined, bad);
    assert.equal(parseHours('1.5'), 1.5);
  });

  it('says a lease\'s limits and an account\'s spend', () => {
    assert.equal(leaseLimitsText({ maxCost: 5, idleReleaseMinutes: 30 }), 'cap 5 cr, idle release 30 min');
    assert.equal(leaseLimitsText({ maxCost: null, idleReleaseMinutes: undefined }), '');
    const s = { spendLimit: 10, period: 'month' as const, periodStart: Date.UTC(2026, 10, 1), periodEnd: Date.UTC(2026, 11, 1), spent: 3.25 };
    assert.equal(accountSpendText(s), 'spent 3.25 cr of 10 cr this month (UTC; counts again from 2026-12-01)');
    assert.equal(accountSpendText({ ...s, spendLimit: null }), 'spent 3.25 cr (no limit) this month (UTC; counts again from 2026-12-01)');
  });

  it('asks before a release only when something runs or waits on the lease, and names it', () => {
    const lease = { id: 'lease_1', gpuModel: 'A100', count: 1 };
    assert.equal(releaseWarning(lease, [job({ status: 'succeeded' }), job({ leaseId: 'lease_2' })]), undefined);
    assert.equal(
      releaseWarning(lease, [job({})]),
      'Hearth: train.py (job_a) is running on A100 ×1 (lease_1). Releasing the lease stops it; files already written are still uploaded.',
    );
    const two = [job({ id: 'job_b', status: 'queued', createdAt: 5 }), job({ kind: 'kernel', entry: '.hearth-kernel' })];
    assert.deepEqual(jobsOnLease(two, 'lease_1').map((j) => j.id), ['job_a', 'job_b']);
    assert.match(releaseWarning(lease, two)!, /^Hearth: a kernel session \(job_a\) and 1 more are running on A100 ×1 \(lease_1\)\. Releasing the lease stops them/);
  });
});

describe('spend control inputs', () => {
  it('takes caps and limits only as positive credits, and null to remove a limit', () => {
    assert.equal(CreateLeaseBody.parse({ maxCost: 5, idleReleaseMinutes: 30 }).maxCost, 5);
    for (const bad of [{ maxCost: 0 }, { maxCost: -1 }, { maxCost: '5' }, { idleReleaseMinutes: 0 }, { idleReleaseMinutes: -5 }]) {
      assert.equal(CreateLeaseBody.safeParse(bad).success, false, JSON.stringify(bad));
    }
    assert.equal(SetSpendLimitBody.parse({ spendLimit: null }).spendLimit, null);
    assert.equal(SetSpendLimitBody.safeParse({ spendLimit: -1 }).success, false);
    assert.equal(SetSpendLimitBody.safeParse({}).success, false, 'removing a limit says so with null');
    assert.equal(CreateAccountBody.safeParse({ name: 'x', spendLimit: 0 }).success, false);
  });
});

describe('spend periods', () => {
  it('counts by calendar month in UTC', () => {
    const m = monthOf(Date.UTC(2026, 11, 31, 23, 59));
    assert.equal(m.start, Date.UTC(2026, 11, 1));
    assert.equal(m.end, Date.UTC(2027, 0, 1));
  });

  it('counts the part of a lease\'s cost that falls in the period', () => {
    const since = 1_000_000;
    const l = { cost: 10, createdAt: since - 500_000, endedAt: since + 500_000, expiresAt: since + 3_600_000 };
    assert.equal(costSince(l, since, since + 900_000), 5, 'half of it after the first of the month');
    assert.equal(costSince({ ...l, createdAt: since + 1 }, since, since + 900_000), 10);
    assert.equal(costSince({ ...l, endedAt: since - 1 }, since, since + 900_000), 0);
    // An active lease counts up to now; one that expired, up to its expiry.
    assert.equal(costSince({ ...l, endedAt: null }, since, since + 500_000), 5);
    assert.equal(costSince({ ...l, endedAt: null, expiresAt: since }, since, since + 500_000), 0);
  });

  it('never estimates a capped lease above its cap', () => {
    const lease = { status: 'active', cost: 4, count: 1, pricePerHour: 3600, createdAt: 0, expiresAt: 1e9, maxCost: 5 } as Lease;
    assert.equal(costNow(lease, 0, 10_000), 5);
    assert.equal(costNow({ ...lease, maxCost: null }, 0, 10_000), 14);
  });
});
