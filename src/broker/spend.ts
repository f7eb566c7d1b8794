// Spend controls: what keeps a renter from paying for more than they meant to. A lease may carry a
// cost cap and an idle release; an account may carry a monthly spend limit. The broker meters
// leases per second (services/leases.ts: billed time excludes the time a worker was away), and a
// tick (`meterMs`, on one replica at a time) compares that metering with the caps: at 80 % the
// lease's jobs get a warning in their log and the lease a `spendWarning`; at 100 % the lease ends
// and its jobs stop with a reason that starts with `lease_cap:` or `spend_limit:`. A lease nothing
// has run on for its idle time is released (`idle_release`). A session cancelled on a lease taken for
// it ends that lease (`cancelled`) a grace after the cancel, whatever its worker says.
import { credits } from '../shared/money';
import type { AccountSpend, CreateLeaseBody, Lease } from '../shared/protocol';
import type { Broker } from './broker';
import type { Ledger } from './ledger';
import { conflict } from './errors';
import type { SpendRepository, WatchedLease } from './store/spend-repository';

/** The share of a cap or limit at which the renter is warned. */
export const WARN_AT = 0.8;

/**
 * The calendar month (UTC) `now` falls in, as cloud providers' budgets count: the count starts
 * again on the first of each month.
 */
export function monthOf(now: number): { start: number; end: number } {
  const d = new Date(now);
  return { start: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1), end: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) };
}

/**
 * The part of a lease's cost that falls from `since` on. A lease that began before `since` counts
 * the share of its billed time after it (time a worker was away is spread evenly over the lease).
 */
export function costSince(l: Pick<Lease, 'cost' | 'createdAt' | 'endedAt' | 'expiresAt'>, since: number, now: number): number {
  const end = Math.min(l.endedAt ?? now, l.expiresAt);
  if (end <= since) return 0;
  if (l.createdAt >= since) return l.cost;
  return (l.cost * (end - since)) / (end - l.createdAt);
}

export class Spend {
  private ticking = false;

  constructor(
    private readonly broker: Broker,
    private readonly repo: SpendRepository,
    /** how long a cancelled session's worker has to stop it before the lease taken for it ends */
    private readonly cancelGraceMs = 30_000,
    /** meters leases into the ledger after the caps are checked */
    private readonly ledger?: Ledger,
  ) {}

  /** Records a new lease's cap and idle release (from its request). */
  async leaseCreated(lease: Lease, body: Pick<CreateLeaseBody, 'maxCost' | 'idleReleaseMinutes'>): Promise<Lease> {
    if (body.maxCost !== undefined || body.idleReleaseMinutes !== undefined) {
      await this.repo.setLeaseLimits(lease.id, body.maxCost ?? null, body.idleReleaseMinutes === undefined ? null : Math.round(body.idleReleaseMinutes * 60_000));
    }
    return this.decorate(lease);
  }

  /** Refuses a new lease to an account that has spent its limit this month. */
  async assertMayLease(accountId: string, now = Date.now()): Promise<void> {
    const s = await this.accountSpend(accountId, now);
    if (s.spendLimit !== null && s.spent >= s.spendLimit) {
      throw conflict(
        'spend_limit',
        `spend_limit: this account has spent ${credits(s.spent)} of its monthly limit of ${credits(s.spendLimit)}; ` +
          `raise it with \`hearth account limit --spend CREDITS\` or wait for ${new Date(s.periodEnd).toISOString().slice(0, 10)}`,
      );
    }
  }

  /** A lease with its cap, idle release, warning and end reason; its cost never shows above its cap. */
  async decorate(lease: Lease): Promise<Lease> {
    return (await this.decorateAll([lease]))[0]!;
  }

  async decorateAll(leases: Lease[]): Promise<Lease[]> {
    const limits = await this.repo.leaseLimits(leases.map((l) => l.id));
    return leases.map((l) => {
      const x = limits.get(l.id);
      const maxCost = x?.maxCost ?? null;
      return {
        ...l,
        // Billing is per second and the cap is checked every tick: the renter never pays past it.
        cost: maxCost === null ? l.cost : Math.min(l.cost, maxCost),
        maxCost,
        idleReleaseMinutes: x?.idleReleaseMs == null ? null : x.idleReleaseMs / 60_000,
        spendWarning: x?.warning ?? null,
        endReason: l.status === 'active' ? null : (x?.endReason ?? l.status),
      };
    });
  }

  async accountSpend(accountId: string, now = Date.now()): Promise<AccountSpend> {
    const month = monthOf(now);
    const limit = await this.repo.accountLimit(accountId);
    const ids = await this.repo.leaseIdsSince(accountId, month.start);
    const leases = await this.decorateAll((await Promise.all(ids.map((id) => this.broker.leaseById(id)))).filter((l): l is Lease => !!l));
    const spent = leases.reduce((sum, l) => sum + costSince(l, month.start, now), 0);
    return { spendLimit: limit?.spendLimit ?? null, period: 'month', periodStart: month.start, periodEnd: month.end, spent };
  }

  setAccountLimit(accountId: string, spendLimit: number | null): Promise<void> {
    return this.repo.setAccountLimit(accountId, spendLimit);
  }

  /**
   * One metering pass: ends leases past their cap or their account's limit, warns at 80 %, and
   * releases idle leases. Runs on the broker's metering timer; passes never overlap.
   */
  async tick(now = Date.now()): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      await this.broker.expireLeases(now);
      for (const w of await this.repo.watchedLeases()) await this.checkLease(w, now);
      // A worker that ignores a cancel bills nothing past the grace: the session's lease ends then.
      for (const c of await this.repo.cancelledSessionLeases(now - this.cancelGraceMs)) {
        const s = this.cancelGraceMs / 1000;
        await this.end(c.leaseId, 'cancelled', `cancelled: the session was cancelled and its worker had not stopped it ${s} s later; the lease taken for it ended then`, c.cancelAt + this.cancelGraceMs);
      }
      for (const a of await this.repo.limitedAccountsWithActiveLeases()) await this.checkAccount(a.accountId, a.spendLimit!, a.warnedPeriod, now);
      await this.ledger?.tick(now);
    } finally {
      this.ticking = false;
    }
  }

  private async checkLease(w: WatchedLease, now: number): Promise<void> {
    const lease = await this.broker.leaseById(w.leaseId);
    if (!lease || lease.status !== 'active') return;
    if (w.maxCost !== null) {
      if (lease.cost >= w.maxCost) {
        await this.end(lease.id, 'lease_cap', `lease_cap: lease ${lease.id} reached its cost cap of ${credits(w.maxCost)}`, now);
        return;
      }
      if (lease.cost >= WARN_AT * w.maxCost && w.warning === null) {
        await this.warn(lease.id, `${Math.floor((100 * lease.cost) / w.maxCost)}% of the lease's cost cap of ${credits(w.maxCost)} used (${credits(lease.cost)}); the lease ends and its jobs stop at the cap`);
      }
    }
    if (w.idleReleaseMs !== null && !w.busy && now - Math.max(w.createdAt, w.lastJobEndedAt ?? 0) >= w.idleReleaseMs) {
      await this.end(lease.id, 'idle_release', `idle_release: nothing ran on lease ${lease.id} for ${w.idleReleaseMs / 60_000} min`, now);
    }
  }

  private async checkAccount(accountId: string, limit: number, warnedPeriod: number | null, now: number): Promise<void> {
    const s = await this.accountSpend(accountId, now);
    if (s.spent >= limit) {
      const why = `spend_limit: the account reached its monthly spend limit of ${credits(limit)} (${credits(s.spent)} spent since ${new Date(s.periodStart).toISOString().slice(0, 10)})`;
      for (const id of await this.repo.activeLeaseIds(accountId)) await this.end(id, 'spend_limit', why, now);
      return;
    }
    if (s.spent >= WARN_AT * limit && warnedPeriod !== s.periodStart) {
      await this.repo.setAccountWarned(accountId, s.periodStart);
      const what = `${Math.floor((100 * s.spent) / limit)}% of the account's monthly spend limit of ${credits(limit)} used (${credits(s.spent)}); its leases end and their jobs stop at the limit`;
      for (const id of await this.repo.activeLeaseIds(accountId)) await this.warn(id, what);
    }
  }

  private async warn(leaseId: string, message: string): Promise<void> {
    await this.repo.setLeaseWarning(leaseId, message);
    for (const j of await this.repo.openJobIds(leaseId)) await this.broker.events.append(j, { type: 'notice', level: 'warning', message: `spend: ${message}` });
  }

  private async end(leaseId: string, reason: string, jobReason: string, now: number): Promise<void> {
    if (await this.broker.endActiveLease(leaseId, jobReason, now)) await this.repo.setEndReason(leaseId, reason);
  }
}
