import type { AccountsRepo } from '../accounts-repo';
import type { AuthRow, NewToken, TokenRow } from '../rows';
import { transaction, type Q, type Sql } from './sql';

export class PgAccounts implements AccountsRepo {
  constructor(private readonly sql: Sql) {}

  async count(): Promise<number> {
    const [r] = await this.sql<{ n: number }[]>`SELECT COUNT(*)::int AS n FROM accounts`;
    return r!.n;
  }

  async findByName(name: string): Promise<{ id: string; name: string } | undefined> {
    const [r] = await this.sql<{ id: string; name: string }[]>`SELECT id, name FROM accounts WHERE lower(name) = lower(${name})`;
    return r;
  }

  async create(a: { id: string; name: string; isAdmin: boolean; createdAt: number }, t: NewToken): Promise<void> {
    await transaction(this.sql, async (tx) => {
      await tx`INSERT INTO accounts (id, name, is_admin, created_at) VALUES (${a.id}, ${a.name}, ${a.isAdmin ? 1 : 0}, ${a.createdAt})`;
      await insertToken(tx, t);
    });
  }

  insertToken(t: NewToken): Promise<void> {
    return insertToken(this.sql, t);
  }

  async authByHash(hash: string): Promise<AuthRow | undefined> {
    const [r] = await this.sql<AuthRow[]>`
      SELECT t.id AS "tokenId", t.kind AS kind, t.expires_at AS "expiresAt", t.revoked_at AS "revokedAt", t.last_used_at AS "lastUsedAt",
             a.id AS "accountId", a.name AS name, a.is_admin AS "isAdmin"
      FROM tokens t JOIN accounts a ON a.id = t.account_id WHERE t.hash = ${hash}`;
    return r;
  }

  async touchToken(tokenId: string, at: number): Promise<void> {
    await this.sql`UPDATE tokens SET last_used_at = ${at} WHERE id = ${tokenId}`;
  }

  async token(tokenId: string): Promise<TokenRow | undefined> {
    const [r] = await this.sql<TokenRow[]>`SELECT * FROM tokens WHERE id = ${tokenId}`;
    return r;
  }

  async tokensOf(accountId: string): Promise<TokenRow[]> {
    return [...(await this.sql<TokenRow[]>`SELECT * FROM tokens WHERE account_id = ${accountId} ORDER BY created_at DESC`)];
  }

  async revokeToken(tokenId: string, at: number): Promise<void> {
    await this.sql`UPDATE tokens SET revoked_at = COALESCE(revoked_at, ${at}) WHERE id = ${tokenId}`;
  }
}

async function insertToken(q: Q, t: NewToken): Promise<void> {
  await q`INSERT INTO tokens (hash, id, account_id, kind, label, prefix, created_at, expires_at)
          VALUES (${t.hash}, ${t.id}, ${t.account_id}, ${t.kind}, ${t.label}, ${t.prefix}, ${t.created_at}, ${t.expires_at})`;
}
