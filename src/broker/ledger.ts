// The ledger: what renters have paid in, what their leases hold, what providers have earned and
// what the broker kept, as double-entry postings (store/ledger-repository.ts). Books:
//   world:grants, world:payments   where credits come from (an admin's grant, a payment provider)
//   renter:ACCOUNT                 a renter's prepaid balance
//   escrow:LEASE                   what a lease holds: its cost up to HOLD_MS ahead
//   earnings:ACCOUNT               what a provider account's workers earned (net of the fee)
//   broker:fees                    the broker's fee (an admin sets its share)
// A lease is made only when its renter's balance covers its cost up to HOLD_MS (the whole lease
// when it is shorter). Each metering pass moves the cost of its billed seconds out of escrow to
// the provider (less the fee), tops the escrow up, and ends a lease whose renter cannot cover the
// next metering period. Its unused escrow returns to the renter when it ends. Refunds are postings.
// In `open` credit (the default, a broker of one's own) renters' books may go negative: the
// ledger records, nothing is refused; `prepaid` (a community broker) refuses what is not covered.
import { credits } from '../shared/money';
import type { Broker } from './broker';
import { conflict, invalid } from './errors';
import { newId } from './ids';
import type { ApplyResult, Batch, LedgerRepository, OpenLedgerLease, Posting, PostingRow } from './store/ledger-repository';
import { billedSeconds, costOfSeconds, type LeaseQuote } from './services/leases';
import type { LeaseRow } from './store/rows';

/** A lease's escrow holds its cost this far ahead (the whole lease when shorter). */
export const HOLD_MS = 3_600_000;
/** micro-credits in a credit: postings are whole numbers of these */
export const MICRO = 1_000_000;
export const FEE_SETTING = 'fee_bps';

export const toMicro = (c: number): number => Math.round(c * MICRO);
export const fromMicro = (m: number): number => m / MICRO;

export const renterBook = (accountId: string) => `renter:${accountId}`;
export const earningsBook = (accountId: string) => `earnings:${accountId}`;
export const escrowBook = (leaseId: string) => `escrow:${leaseId}`;
export const FEES_BOOK = 'broker:fees';
export const GRANTS_BOOK = 'world:grants';
export const PAYMENTS_BOOK = 'world:payments';

export type CreditMode = 'open' | 'prepaid';


/** Micro-credits of `ms` of a lease's time. */
function microFor(l: Pick<LeaseRow, 'count' | 'price_per_hour'>, ms: number): number {
  return Math.max(0, Math.ceil((l.count * l.price_per_hour * MICRO * ms) / 3_600_000));
}

export class Ledger {
  constructor(
    private readonly broker: Broker,
    private readonly repo: LedgerRepository,
    private readonly mode: CreditMode,
    private readonly meterMs: number,
  ) {}

  /** Books that may go below zero: the outside world's, and renters' in open credit. */
  readonly unlimited = (book: string): boolean => book.startsWith('world:') || (this.mode === 'open' && book.startsWith('renter:'));

  private apply(b: Batch): Promise<ApplyResult> {
    return this.repo.apply(b, this.unlimited);
  }

  /** Credits in from outside (an admin's grant, a payment); the same key twice credits once. */
  async credit(accountId: string, amount: number, key: string, kind: 'grant' | 'payment', memo?: string): Promise<{ applied: boolean; balance: number }> {
    const micro = toMicro(amount);
    if (micro <= 0) throw invalid('bad_amount', 'the amount must be at least 0.000001 credits');
    const from = kind === 'grant' ? GRANTS_BOOK : PAYMENTS_BOOK;
    const r = await this.apply({ postings: [{ key: `${kind}:${key}`, from, to: renterBook(accountId), amount: micro, kind, memo: memo ?? null, at: Date.now() }] });
    return { applied: r === 'applied', balance: fromMicro((await this.repo.book(renterBook(accountId))).balance) };
  }

  async setOverdraft(accountId: string, amount: number): Promise<void> {
    await this.repo.setOverdraft(renterBook(accountId), toMicro(amount));
  }

  /** The broker's share of each metered credit, 0 … 1. */
  async fee(): Promise<number> {
    return ((await this.repo.setting(FEE_SETTING)) ?? 0) / 10_000;
  }

  async setFee(share: number): Promise<void> {
    if (!(share >= 0 && share <= 1)) throw invalid('bad_fee', 'the fee is a share between 0 and 1');
    await this.repo.setSetting(FEE_SETTING, Math.round(share * 10_000));
  }

  /**
   * Holds a new lease's cost up to HOLD_MS in escrow, before the lease exists: a renter whose
   * balance cannot cover it gets no lease (`insufficient_balance`).
   */
  async hold(q: LeaseQuote): Promise<void> {
    const amount = microFor({ count: q.count, price_per_hour: q.pricePerHour }, Math.min(q.expiresAt - q.createdAt, HOLD_MS));
    const open = { leaseId: q.leaseId, renterBook: renterBook(q.accountId), providerBook: earningsBook(q.providerAccountId), workerId: q.workerId, metered: 0 };
    const postings: Posting[] =
      amount > 0 ? [{ key: `hold:${q.leaseId}`, from: open.renterBook, to: escrowBook(q.leaseId), amount, kind: 'hold', leaseId: q.leaseId, workerId: q.workerId, at: q.createdAt }] : [];
    const r = await this.apply({ open, postings });
    if (typeof r === 'object') {
      const { balance, overdraft } = await this.repo.book(open.renterBook);
      throw conflict(
        'insufficient_balance',
        `insufficient_balance: this lease holds ${credits(fromMicro(amount))} in escrow (its cost for ${Math.round(Math.min(q.expiresAt - q.createdAt, HOLD_MS) / 60_000)} min) and the account's balance is ${credits(fromMicro(balance))}` +
          `${overdraft ? ` (overdraft ${credits(fromMicro(overdraft))})` : ''}; ask the broker's admin for credits (\`hearth admin grant\`) or lease for less time`,
      );
    }
  }

  /**
   * One metering pass over every lease whose escrow is open. Postings are keyed by what was metered
   * before them and guarded by the lease's metered amount, so two replicas metering at once post
   * each second once.
   */
  async tick(now = Date.now()): Promise<void> {
    const fee = await this.fee();
    const open = await this.repo.openLeases();
    const batches: Batch[] = [];
    const toEnd: { leaseId: string; why: string }[] = [];
    for (const o of open) {
      const plan = this.plan(o, fee, now);
      batches.push(...plan.batches);
      if (plan.end) toEnd.push({ leaseId: o.leaseId, why: plan.end });
    }
    if (batches.length) {
      try {
        await this.repo.applyAll(batches, this.unlimited);
      } catch {
        // One batch was refused (another replica got there first): the rest go one by one.
        for (const b of batches) await this.repo.apply(b, this.unlimited);
      }
    }
    for (const e of toEnd) {
      if (await this.broker.endActiveLease(e.leaseId, e.why, now)) await this.broker.store.spend.setEndReason(e.leaseId, 'balance');
    }
  }

  /** What one lease's metering pass posts, and whether it ends for want of credits. */
  private plan(o: OpenLedgerLease, fee: number, now: number): { batches: Batch[]; end?: string } {
    const l = o.lease;
    const costMicro = toMicro(Math.min(costOfSeconds(l, billedSeconds(l, now)), o.maxCost ?? Infinity));
    const due = Math.max(0, costMicro - o.metered);
    const pay = Math.min(due, o.escrow);
    const batches: Batch[] = [];
    let metered = o.metered;
    let escrow = o.escrow;
    if (pay > 0) {
      const feeMicro = Math.floor(pay * fee);
      const base = { leaseId: o.leaseId, workerId: o.workerId, at: now };
      const postings: Posting[] = [];
      if (pay - feeMicro > 0) postings.push({ ...base, key: `meter:${o.leaseId}:${metered + pay}`, from: escrowBook(o.leaseId), to: o.providerBook, amount: pay - feeMicro, kind: 'meter' });
      if (feeMicro > 0) postings.push({ ...base, key: `fee:${o.leaseId}:${metered + pay}`, from: escrowBook(o.leaseId), to: FEES_BOOK, amount: feeMicro, kind: 'fee' });
      batches.push({ postings, guard: { leaseId: o.leaseId, metered, to: metered + pay } });
      metered += pay;
      escrow -= pay;
    }
    if (l.status !== 'active') {
      // Ended: what the escrow still holds goes back to the renter, and the escrow closes.
      const postings: Posting[] =
        escrow > 0 ? [{ key: `release:${o.leaseId}`, from: escrowBook(o.leaseId), to: o.renterBook, amount: escrow, kind: 'release', leaseId: o.leaseId, workerId: o.workerId, at: now }] : [];
      batches.push({ postings, guard: { leaseId: o.leaseId, metered, to: metered, close: { at: now } } });
      return { batches };
    }
    const left = Math.max(0, l.expires_at - now);
    const target = microFor(l, Math.min(left, HOLD_MS));
    let topUp = 0;
    if (escrow < target / 2) {
      const want = target - escrow;
      const available = this.unlimited(o.renterBook) ? want : Math.max(0, o.renterBalance + o.renterOverdraft);
      topUp = Math.min(want, available);
      if (topUp > 0) {
        batches.push({
          postings: [{ key: `topup:${o.leaseId}:${metered}:${escrow}`, from: o.renterBook, to: escrowBook(o.leaseId), amount: topUp, kind: 'hold', leaseId: o.leaseId, workerId: o.workerId, at: now }],
          guard: { leaseId: o.leaseId, metered, to: metered },
        });
      }
    }
    // The next period is two metering passes: a lease whose escrow and balance cannot cover it ends now.
    const next = microFor(l, Math.min(left, 2 * this.meterMs));
    if (pay < due || escrow + topUp < next) {
      return {
        batches,
        end: `balance: the account's balance cannot cover lease ${o.leaseId}'s next ${Math.round((2 * this.meterMs) / 1000)} s; ask the broker's admin for credits (\`hearth admin grant\`)`,
      };
    }
    return { batches };
  }

  /**
   * Gives a renter back `amount` credits of a lease (lost-host seconds, lost work): taken from the
   * provider's earnings and the broker's fee in the share the fee had, never more than the lease
   * was metered. The same key refunds once.
   */
  async refund(leaseId: string, amount: number, key: string, memo: string): Promise<{ applied: boolean; refunded: number }> {
    const ll = await this.repo.ledgerLease(leaseId);
    if (!ll) throw invalid('no_ledger_lease', `the ledger holds nothing of lease ${leaseId}`);
    const metered = await this.meteredOf(leaseId);
    const micro = Math.min(toMicro(amount), metered.provider + metered.fee);
    if (micro <= 0) return { applied: false, refunded: 0 };
    const feePart = metered.provider + metered.fee === 0 ? 0 : Math.floor((micro * metered.fee) / (metered.provider + metered.fee));
    const base = { leaseId, workerId: ll.workerId, at: Date.now(), kind: 'refund' as const, memo, to: ll.renterBook };
    const postings: Posting[] = [];
    if (micro - feePart > 0) postings.push({ ...base, key: `refund:${key}:provider`, from: ll.providerBook, amount: micro - feePart });
    if (feePart > 0) postings.push({ ...base, key: `refund:${key}:fee`, from: FEES_BOOK, amount: feePart });
    const r = await this.apply({ postings });
    if (typeof r === 'object') throw conflict('insufficient_earnings', `the provider's earnings cannot cover a refund of ${credits(fromMicro(micro))} now`);
    return { applied: r === 'applied', refunded: r === 'applied' ? fromMicro(micro) : 0 };
  }

  private async meteredOf(leaseId: string): Promise<{ provider: number; fee: number }> {
    const rows = await this.repo.postings({ books: [], leaseIds: [leaseId], limit: 1_000_000 });
    let provider = 0;
    let fee = 0;
    for (const p of rows) {
      if (p.kind === 'meter') provider += p.amount;
      if (p.kind === 'fee') fee += p.amount;
      if (p.kind === 'refund' && p.from === FEES_BOOK) fee -= p.amount;
      else if (p.kind === 'refund') provider -= p.amount;
    }
    return { provider, fee };
  }

  /** An account's money: its balance, what its open leases hold, its overdraft and its earnings as a provider. */
  async balance(accountId: string): Promise<{ balance: number; held: number; overdraft: number | null; earnings: number; mode: CreditMode }> {
    const r = await this.repo.book(renterBook(accountId));
    const e = await this.repo.book(earningsBook(accountId));
    const held = (await this.repo.openLeases()).filter((o) => o.renterBook === renterBook(accountId)).reduce((s, o) => s + o.escrow, 0);
    return {
      balance: fromMicro(r.balance),
      held: fromMicro(held),
      overdraft: this.unlimited(renterBook(accountId)) ? null : fromMicro(r.overdraft),
      earnings: fromMicro(e.balance),
      mode: this.mode,
    };
  }

  /** The postings that touch an account's books or its leases, oldest first. */
  async postings(accountId: string, since = 0, limit = 10_000): Promise<PostingRow[]> {
    const leaseIds = (await this.broker.store.leases.ofAccount(accountId)).map((l) => l.id);
    return this.repo.postings({ books: [renterBook(accountId), earningsBook(accountId)], leaseIds, since, limit });
  }

  /** A provider account's earnings per worker and UTC day, net of the fee and of refunds. */
  async earnings(accountId: string, since = 0): Promise<{ workerId: string; day: string; credits: number }[]> {
    const book = earningsBook(accountId);
    const by = new Map<string, number>();
    for (const p of await this.repo.postings({ books: [book], since, limit: 1_000_000 })) {
      const k = `${p.workerId ?? ''}\u0000${new Date(p.at).toISOString().slice(0, 10)}`;
      by.set(k, (by.get(k) ?? 0) + (p.to === book ? p.amount : -p.amount));
    }
    return [...by].map(([k, v]) => {
      const [workerId, day] = k.split('\u0000') as [string, string];
      return { workerId, day, credits: fromMicro(v) };
    });
  }

  totals() {
    return this.repo.totals();
  }

  /** A fresh idempotency key for a caller that brings none. */
  static newKey(): string {
    return newId('req').slice(4);
  }
}
