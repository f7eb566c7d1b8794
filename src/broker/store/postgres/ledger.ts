// The ledger's SQL on PostgreSQL (tables of migration 5 in migrations.ts). A batch is one
// transaction: the lease's row is locked first (its guard), then the books it touches in name
// order, so replicas metering at once wait for each other instead of deadlocking or posting twice.
import {
  BatchRefused,
  booksOf,
  netOf,
  postingOf,
  type ApplyResult,
  type Batch,
  ledgerLeaseOf,
  type LedgerLease,
  type LedgerLeaseDbRow,
  type LedgerRepository,
  type OpenLedgerLease,
  type PostingDbRow,
  type PostingRow,
} from '../ledger-repository';
import type { LeaseRow } from '../rows';
import { transaction, type Q, type Sql } from './sql';

export class PgLedger implements LedgerRepository {
  constructor(private readonly sql: Sql) {}

  private async applyOne(tx: Q, b: Batch, unlimited: (book: string) => boolean): Promise<void> {
    if (b.open) {
      const o = b.open;
      await tx`INSERT INTO ledger_leases (lease_id, renter_book, provider_book, worker_id, metered)
        VALUES (${o.leaseId}, ${o.renterBook}, ${o.providerBook}, ${o.workerId}, ${o.metered}) ON CONFLICT (lease_id) DO NOTHING`;
    }
    if (b.guard) {
      const g = b.guard;
      const r = await tx`UPDATE ledger_leases SET metered = ${g.to}, closed_at = COALESCE(${g.close?.at ?? null}::bigint, closed_at)
        WHERE lease_id = ${g.leaseId} AND metered = ${g.metered} AND closed_at IS NULL`;
      if (r.count === 0) throw new BatchRefused('stale');
    }
    const net = netOf(b);
    const books = booksOf(b);
    if (books.length === 0) return;
    const keys = await tx<{ key: string }[]>`
      INSERT INTO ledger_postings (key, from_book, to_book, amount, kind, lease_id, worker_id, memo, at)
      SELECT * FROM unnest(${b.postings.map((p) => p.key)}::text[], ${b.postings.map((p) => p.from)}::text[], ${b.postings.map((p) => p.to)}::text[],
        ${b.postings.map((p) => p.amount)}::bigint[], ${b.postings.map((p) => p.kind)}::text[], ${b.postings.map((p) => p.leaseId ?? null)}::text[],
        ${b.postings.map((p) => p.workerId ?? null)}::text[], ${b.postings.map((p) => p.memo ?? null)}::text[], ${b.postings.map((p) => p.at)}::bigint[])
      ON CONFLICT (key) DO NOTHING RETURNING key`;
    if (keys.length !== b.postings.length) throw new BatchRefused('duplicate');
    const after = await tx<{ book: string; balance: number; overdraft: number }[]>`
      UPDATE ledger_books b SET balance = b.balance + d.delta
      FROM unnest(${books}::text[], ${books.map((k) => net.get(k) ?? 0)}::bigint[]) AS d(book, delta)
      WHERE b.book = d.book RETURNING b.book, b.balance, b.overdraft`;
    for (const a of after) {
      if ((net.get(a.book) ?? 0) < 0 && !unlimited(a.book) && Number(a.balance) < -Number(a.overdraft)) throw new BatchRefused({ insufficient: a.book });
    }
  }

  async apply(b: Batch, unlimited: (book: string) => boolean): Promise<ApplyResult> {
    return (await this.applyAll([b], unlimited))[0]!;
  }

  async applyAll(batches: Batch[], unlimited: (book: string) => boolean): Promise<ApplyResult[]> {
    try {
      return await transaction(this.sql, async (tx) => {
        // Every lock this transaction needs, taken first and in one order (the leases' rows by id,
        // then the books by name), so transactions of several replicas wait and never deadlock.
        const leaseIds = [...new Set(batches.flatMap((b) => (b.guard ? [b.guard.leaseId] : [])))].sort();
        if (leaseIds.length) await tx`SELECT lease_id FROM ledger_leases WHERE lease_id = ANY(${leaseIds}::text[]) ORDER BY lease_id FOR UPDATE`;
        const books = [...new Set(batches.flatMap(booksOf))].sort();
        if (books.length) {
          await tx`INSERT INTO ledger_books (book) SELECT unnest(${books}::text[]) ORDER BY 1 ON CONFLICT (book) DO NOTHING`;
          await tx`SELECT book FROM ledger_books WHERE book = ANY(${books}::text[]) ORDER BY book FOR UPDATE`;
        }
        const out: ApplyResult[] = [];
        for (const b of batches) {
          try {
            await this.applyOne(tx, b, unlimited);
            out.push('applied');
          } catch (err) {
            // A stale guard is checked first and changed nothing: that batch alone is skipped.
            if (err instanceof BatchRefused && err.result === 'stale') out.push('stale');
            else throw err;
          }
        }
        return out;
      });
    } catch (err) {
      if (err instanceof BatchRefused && batches.length === 1) return [err.result];
      throw err;
    }
  }

  async book(book: string): Promise<{ balance: number; overdraft: number }> {
    const [r] = await this.sql<{ balance: number; overdraft: number }[]>`SELECT balance, overdraft FROM ledger_books WHERE book = ${book}`;
    return r ? { balance: Number(r.balance), overdraft: Number(r.overdraft) } : { balance: 0, overdraft: 0 };
  }

  async books(prefix: string): Promise<{ book: string; balance: number; overdraft: number }[]> {
    const rows = await this.sql<{ book: string; balance: number; overdraft: number }[]>`
      SELECT book, balance, overdraft FROM ledger_books WHERE left(book, length(${prefix})) = ${prefix} ORDER BY book`;
    return rows.map((r) => ({ book: r.book, balance: Number(r.balance), overdraft: Number(r.overdraft) }));
  }

  async setOverdraft(book: string, overdraft: number): Promise<void> {
    await this.sql`INSERT INTO ledger_books (book, overdraft) VALUES (${book}, ${overdraft}) ON CONFLICT (book) DO UPDATE SET overdraft = EXCLUDED.overdraft`;
  }

  async openLeases(): Promise<OpenLedgerLease[]> {
    const rows = await this.sql<(LedgerLeaseDbRow & LeaseRow & { max_cost: number | null; escrow: number; renter_balance: number; renter_overdraft: number })[]>`
      SELECT ll.*, l.*, lim.max_cost, COALESCE(e.balance, 0) AS escrow, COALESCE(r.balance, 0) AS renter_balance, COALESCE(r.overdraft, 0) AS renter_overdraft
      FROM ledger_leases ll JOIN leases l ON l.id = ll.lease_id
        LEFT JOIN lease_limits lim ON lim.lease_id = ll.lease_id
        LEFT JOIN ledger_books e ON e.book = 'escrow:' || ll.lease_id
        LEFT JOIN ledger_books r ON r.book = ll.renter_book
      WHERE ll.closed_at IS NULL`;
    return rows.map((r) => ({
      ...ledgerLeaseOf(r),
      lease: r,
      escrow: Number(r.escrow),
      maxCost: r.max_cost,
      renterBalance: Number(r.renter_balance),
      renterOverdraft: Number(r.renter_overdraft),
    }));
  }

  async ledgerLease(leaseId: string): Promise<LedgerLease | undefined> {
    const [r] = await this.sql<LedgerLeaseDbRow[]>`SELECT * FROM ledger_leases WHERE lease_id = ${leaseId}`;
    return r && ledgerLeaseOf(r);
  }

  async postings(q: { books: string[]; leaseIds?: string[]; since?: number; limit: number }): Promise<PostingRow[]> {
    const rows = await this.sql<PostingDbRow[]>`
      SELECT * FROM ledger_postings WHERE at >= ${q.since ?? 0}
        AND (from_book = ANY(${q.books}::text[]) OR to_book = ANY(${q.books}::text[]) OR lease_id = ANY(${q.leaseIds ?? []}::text[]))
      ORDER BY id LIMIT ${q.limit}`;
    return rows.map(postingOf);
  }

  async totals(): Promise<{ sum: number; books: number; postings: number; keys: number }> {
    const [b] = await this.sql<{ sum: number; books: number }[]>`SELECT COALESCE(SUM(balance), 0)::bigint AS sum, COUNT(*)::int AS books FROM ledger_books`;
    const [p] = await this.sql<{ postings: number; keys: number }[]>`SELECT COUNT(*)::int AS postings, COUNT(DISTINCT key)::int AS keys FROM ledger_postings`;
    return { sum: Number(b!.sum), books: b!.books, postings: p!.postings, keys: p!.keys };
  }

  async setting(name: string): Promise<number | undefined> {
    const [r] = await this.sql<{ value: number }[]>`SELECT value FROM ledger_settings WHERE name = ${name}`;
    return r?.value;
  }

  async setSetting(name: string, value: number): Promise<void> {
    await this.sql`INSERT INTO ledger_settings (name, value) VALUES (${name}, ${value}) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`;
  }
}
