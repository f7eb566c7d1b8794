// The ledger's storage: double-entry books in the broker's database. Every posting moves a
// positive amount (integer micro-credits) from one book to another under an idempotency key that
// can be used once, so the balances of all books always sum to zero and no posting lands twice.
// A book may not go below minus its overdraft unless the service calls it unlimited (the outside
// world's books, which credits come from). Implemented in sqlite/ledger.ts and postgres/ledger.ts.
import type { LeaseRow } from './rows';

export interface Posting {
  /** unique across the ledger: a posting with a key already used is not made again */
  key: string;
  from: string;
  to: string;
  /** micro-credits, > 0 */
  amount: number;
  kind: 'grant' | 'payment' | 'hold' | 'meter' | 'fee' | 'release' | 'refund' | 'adjust';
  leaseId?: string | null;
  workerId?: string | null;
  memo?: string | null;
  at: number;
}

export interface PostingRow extends Required<Omit<Posting, 'leaseId' | 'workerId' | 'memo'>> {
  id: number;
  leaseId: string | null;
  workerId: string | null;
  memo: string | null;
}

/** What the ledger knows of a lease: whose money it holds, who earns it, how much was metered. */
export interface LedgerLease {
  leaseId: string;
  renterBook: string;
  providerBook: string;
  workerId: string;
  /** micro-credits moved out of the lease's escrow to the provider and the fee so far */
  metered: number;
}

/** A lease whose escrow is still open, with all a metering pass needs. */
export interface OpenLedgerLease extends LedgerLease {
  lease: LeaseRow;
  escrow: number;
  maxCost: number | null;
  renterBalance: number;
  renterOverdraft: number;
}

/**
 * Checked and changed first in a batch, under the lease's row lock: the batch applies only when the
 * lease's metered amount is still `metered` (and its escrow still open); it becomes `to`.
 */
export interface LeaseGuard {
  leaseId: string;
  metered: number;
  to: number;
  /** closes the lease's escrow (its last batch) */
  close?: { at: number };
}

export interface Batch {
  postings: Posting[];
  open?: LedgerLease;
  guard?: LeaseGuard;
}

export type ApplyResult = 'applied' | 'duplicate' | 'stale' | { insufficient: string };

export interface LedgerRepository {
  /**
   * Applies the batch atomically: opens its lease, checks its guard, makes every posting (none when
   * a key was used before: 'duplicate'), and refuses (changing nothing) when a book that is not
   * `unlimited` would go below minus its overdraft.
   */
  apply(batch: Batch, unlimited: (book: string) => boolean): Promise<ApplyResult>;
  /** several batches in one transaction (a metering pass); a failing one fails them all, so call apply() for each then */
  applyAll(batches: Batch[], unlimited: (book: string) => boolean): Promise<ApplyResult[]>;
  book(book: string): Promise<{ balance: number; overdraft: number }>;
  /** balances of the books whose names start with `prefix` */
  books(prefix: string): Promise<{ book: string; balance: number; overdraft: number }[]>;
  setOverdraft(book: string, overdraft: number): Promise<void>;
  /** leases whose escrow is open, with their lease rows, escrow, cap and renter's balance */
  openLeases(): Promise<OpenLedgerLease[]>;
  ledgerLease(leaseId: string): Promise<LedgerLease | undefined>;
  /** postings from or to any of `books`, or of any of `leaseIds`, from `since` on, oldest first */
  postings(q: { books: string[]; leaseIds?: string[]; since?: number; limit: number }): Promise<PostingRow[]>;
  /** the sum of all balances (0 unless something is broken), the number of books and of postings */
  totals(): Promise<{ sum: number; books: number; postings: number; keys: number }>;
  setting(name: string): Promise<number | undefined>;
  setSetting(name: string, value: number): Promise<void>;
}

/** The rows both backends read. */
export interface PostingDbRow {
  id: number;
  key: string;
  from_book: string;
  to_book: string;
  amount: number;
  kind: Posting['kind'];
  lease_id: string | null;
  worker_id: string | null;
  memo: string | null;
  at: number;
}

export const postingOf = (r: PostingDbRow): PostingRow => ({
  id: Number(r.id),
  key: r.key,
  from: r.from_book,
  to: r.to_book,
  amount: Number(r.amount),
  kind: r.kind,
  leaseId: r.lease_id,
  workerId: r.worker_id,
  memo: r.memo,
  at: Number(r.at),
});

/** A batch refused inside its transaction: rolled back, said as the result. */
export class BatchRefused extends Error {
  constructor(readonly result: Exclude<ApplyResult, 'applied'>) {
    super(typeof result === 'string' ? result : `insufficient ${result.insufficient}`);
  }
}

/** The books a batch moves money from or to, sorted: locked in this order, so two batches never deadlock. */
export function booksOf(b: Batch): string[] {
  return [...new Set(b.postings.flatMap((p) => [p.from, p.to]))].sort();
}

/** Net change per book of a batch. */
export function netOf(b: Batch): Map<string, number> {
  const net = new Map<string, number>();
  for (const p of b.postings) {
    if (!Number.isSafeInteger(p.amount) || p.amount <= 0) throw new Error(`posting ${p.key}: amount ${p.amount} is not a positive whole number of micro-credits`);
    if (p.from === p.to) throw new Error(`posting ${p.key} moves credits from ${p.from} to itself`);
    net.set(p.from, (net.get(p.from) ?? 0) - p.amount);
    net.set(p.to, (net.get(p.to) ?? 0) + p.amount);
  }
  return net;
}

/** A `ledger_leases` row as either backend returns it (PostgreSQL's bigint `metered` as text). */
export interface LedgerLeaseDbRow {
  lease_id: string;
  renter_book: string;
  provider_book: string;
  worker_id: string;
  metered: number | string;
}

export const ledgerLeaseOf = (r: LedgerLeaseDbRow): LedgerLease => ({
  leaseId: r.lease_id,
  renterBook: r.renter_book,
  providerBook: r.provider_book,
  workerId: r.worker_id,
  metered: Number(r.metered),
});
