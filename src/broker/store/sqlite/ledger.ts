// The ledger's SQL on SQLite (tables of migration 9 in db.ts). A batch is one IMMEDIATE
// transaction: SQLite has one writer at a time, so the guard and the balance checks see the truth.
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
import type { Db } from './db';

export class SqliteLedger implements LedgerRepository {
  constructor(private readonly db: Db) {}

  private applyOne(b: Batch, unlimited: (book: string) => boolean): void {
    const db = this.db;
    if (b.open) {
      const o = b.open;
      db.prepare('INSERT INTO ledger_leases (lease_id, renter_book, provider_book, worker_id, metered) VALUES (?, ?, ?, ?, ?) ON CONFLICT (lease_id) DO NOTHING').run(
        o.leaseId,
        o.renterBook,
        o.providerBook,
        o.workerId,
        o.metered,
      );
    }
    if (b.guard) {
      const g = b.guard;
      const r = db
        .prepare('UPDATE ledger_leases SET metered = ?, closed_at = COALESCE(?, closed_at) WHERE lease_id = ? AND metered = ? AND closed_at IS NULL')
        .run(g.to, g.close?.at ?? null, g.leaseId, g.metered);
      if (r.changes === 0) throw new BatchRefused('stale');
    }
    const net = netOf(b);
    for (const p of b.postings) {
      const r = db
        .prepare('INSERT INTO ledger_postings (key, from_book, to_book, amount, kind, lease_id, worker_id, memo, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING')
        .run(p.key, p.from, p.to, p.amount, p.kind, p.leaseId ?? null, p.workerId ?? null, p.memo ?? null, p.at);
      if (r.changes === 0) throw new BatchRefused('duplicate');
    }
    for (const book of booksOf(b)) {
      db.prepare('INSERT INTO ledger_books (book) VALUES (?) ON CONFLICT (book) DO NOTHING').run(book);
      const after = db.prepare('UPDATE ledger_books SET balance = balance + ? WHERE book = ? RETURNING balance, overdraft').get(net.get(book) ?? 0, book) as {
        balance: number;
        overdraft: number;
      };
      if ((net.get(book) ?? 0) < 0 && !unlimited(book) && after.balance < -after.overdraft) throw new BatchRefused({ insufficient: book });
    }
  }

  async apply(b: Batch, unlimited: (book: string) => boolean): Promise<ApplyResult> {
    return (await this.applyAll([b], unlimited))[0]!;
  }

  async applyAll(batches: Batch[], unlimited: (book: string) => boolean): Promise<ApplyResult[]> {
    const out: ApplyResult[] = [];
    const run = this.db.transaction(() => {
      for (const b of batches) {
        // A stale guard changed nothing (it is checked first): that batch alone is skipped.
        try {
          this.applyOne(b, unlimited);
          out.push('applied');
        } catch (err) {
          if (err instanceof BatchRefused && err.result === 'stale') out.push('stale');
          else throw err;
        }
      }
    });
    try {
      run.immediate();
    } catch (err) {
      if (err instanceof BatchRefused) return batches.length === 1 ? [err.result] : Promise.reject(err);
      throw err;
    }
    return out;
  }

  async book(book: string): Promise<{ balance: number; overdraft: number }> {
    return (this.db.prepare('SELECT balance, overdraft FROM ledger_books WHERE book = ?').get(book) as { balance: number; overdraft: number } | undefined) ?? { balance: 0, overdraft: 0 };
  }

  async books(prefix: string): Promise<{ book: string; balance: number; overdraft: number }[]> {
    return this.db.prepare("SELECT book, balance, overdraft FROM ledger_books WHERE substr(book, 1, length(?)) = ? ORDER BY book").all(prefix, prefix) as {
      book: string;
      balance: number;
      overdraft: number;
    }[];
  }

  async setOverdraft(book: string, overdraft: number): Promise<void> {
    this.db.prepare('INSERT INTO ledger_books (book, overdraft) VALUES (?, ?) ON CONFLICT (book) DO UPDATE SET overdraft = excluded.overdraft').run(book, overdraft);
  }

  async openLeases(): Promise<OpenLedgerLease[]> {
    const rows = this.db
      .prepare(
        `SELECT ll.*, l.*, lim.max_cost, COALESCE(e.balance, 0) AS escrow, COALESCE(r.balance, 0) AS renter_balance, COALESCE(r.overdraft, 0) AS renter_overdraft
         FROM ledger_leases ll JOIN leases l ON l.id = ll.lease_id
           LEFT JOIN lease_limits lim ON lim.lease_id = ll.lease_id
           LEFT JOIN ledger_books e ON e.book = 'escrow:' || ll.lease_id
           LEFT JOIN ledger_books r ON r.book = ll.renter_book
         WHERE ll.closed_at IS NULL`,
      )
      .all() as (LedgerLeaseDbRow & LeaseRow & { max_cost: number | null; escrow: number; renter_balance: number; renter_overdraft: number })[];
    return rows.map((r) => ({
      ...ledgerLeaseOf(r),
      lease: r,
      escrow: r.escrow,
      maxCost: r.max_cost,
      renterBalance: r.renter_balance,
      renterOverdraft: r.renter_overdraft,
    }));
  }

  async ledgerLease(leaseId: string): Promise<LedgerLease | undefined> {
    const r = this.db.prepare('SELECT * FROM ledger_leases WHERE lease_id = ?').get(leaseId) as LedgerLeaseDbRow | undefined;
    return r && ledgerLeaseOf(r);
  }

  async postings(q: { books: string[]; leaseIds?: string[]; since?: number; limit: number }): Promise<PostingRow[]> {
    const rows = this.db
      .prepare(
        `SELECT * FROM ledger_postings WHERE at >= ? AND (from_book IN (SELECT value FROM json_each(?)) OR to_book IN (SELECT value FROM json_each(?))
           OR lease_id IN (SELECT value FROM json_each(?))) ORDER BY id LIMIT ?`,
      )
      .all(q.since ?? 0, JSON.stringify(q.books), JSON.stringify(q.books), JSON.stringify(q.leaseIds ?? []), q.limit) as PostingDbRow[];
    return rows.map(postingOf);
  }

  async totals(): Promise<{ sum: number; books: number; postings: number; keys: number }> {
    const b = this.db.prepare('SELECT COALESCE(SUM(balance), 0) AS sum, COUNT(*) AS books FROM ledger_books').get() as { sum: number; books: number };
    const p = this.db.prepare('SELECT COUNT(*) AS postings, COUNT(DISTINCT key) AS keys FROM ledger_postings').get() as { postings: number; keys: number };
    return { ...b, ...p };
  }

  async setting(name: string): Promise<number | undefined> {
    return (this.db.prepare('SELECT value FROM ledger_settings WHERE name = ?').get(name) as { value: number } | undefined)?.value;
  }

  async setSetting(name: string, value: number): Promise<void> {
    this.db.prepare('INSERT INTO ledger_settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value').run(name, value);
  }
}
