import type { AccountsRepo } from '../accounts-repo';
import type { AuthRow, NewToken, TokenRow } from '../rows';
import type { Db } from './db';

export class SqliteAccounts implements AccountsRepo {
  constructor(private readonly db: Db) {}

  async count(): Promise<number> {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM accounts').get() as { n: number }).n;
  }

  async findByName(name: string): Promise<{ id: string; name: string } | undefined> {
    return this.db.prepare('SELECT id, name FROM accounts WHERE name = ? COLLATE NOCASE').get(name) as { id: string; name: string } | undefined;
  }

  async create(a: { id: string; name: string; isAdmin: boolean; createdAt: number }, t: NewToken): Promise<void> {
    this.db.transaction(() => {
      this.db.prepare('INSERT INTO accounts (id, name, is_admin, created_at) VALUES (?, ?, ?, ?)').run(a.id, a.name, a.isAdmin ? 1 : 0, a.createdAt);
      this.insertSync(t);
    })();
  }

  async insertToken(t: NewToken): Promise<void> {
    this.insertSync(t);
  }

  private insertSync(t: NewToken): void {
    this.db
      .prepare('INSERT INTO tokens (hash, id, account_id, kind, label, prefix, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(t.hash, t.id, t.account_id, t.kind, t.label, t.prefix, t.created_at, t.expires_at);
  }

  async authByHash(hash: string): Promise<AuthRow | undefined> {
    return this.db
      .prepare(
        `SELECT t.id AS tokenId, t.kind AS kind, t.expires_at AS expiresAt, t.revoked_at AS revokedAt, t.last_used_at AS lastUsedAt,
                a.id AS accountId, a.name AS name, a.is_admin AS isAdmin
         FROM tokens t JOIN accounts a ON a.id = t.account_id WHERE t.hash = ?`,
      )
      .get(hash) as AuthRow | undefined;
  }

  async touchToken(tokenId: string, at: number): Promise<void> {
    this.db.prepare('UPDATE tokens SET last_used_at = ? WHERE id = ?').run(at, tokenId);
  }

  async token(tokenId: string): Promise<TokenRow | undefined> {
    return this.db.prepare('SELECT * FROM tokens WHERE id = ?').get(tokenId) as TokenRow | undefined;
  }

  async tokensOf(accountId: string): Promise<TokenRow[]> {
    return this.db.prepare('SELECT * FROM tokens WHERE account_id = ? ORDER BY created_at DESC').all(accountId) as TokenRow[];
  }

  async revokeToken(tokenId: string, at: number): Promise<void> {
    this.db.prepare('UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?').run(at, tokenId);
  }
}
