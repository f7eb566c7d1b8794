// Accounts and tokens. A token is shown once, at creation; the broker keeps its sha256, an id to
// list and revoke it by, and the first characters of its text so a person can tell tokens apart.
// A token may expire; a revoked or expired one is refused at once, with a reason that says which.
import type { TokenInfo } from '../shared/protocol';
import { HttpError } from './http-error';
import { hashToken, newId, newToken } from './ids';
import type { Db } from './store/db';

export interface Principal {
  accountId: string;
  name: string;
  isAdmin: boolean;
  kind: 'user' | 'worker';
  /** the id of the token presented, so what it opened (a worker socket) can close when it is revoked */
  tokenId: string;
}

export type AuthResult = { ok: true; principal: Principal } | { ok: false; reason: string };

interface TokenRow {
  id: string;
  account_id: string;
  kind: 'user' | 'worker';
  label: string;
  prefix: string;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
  revoked_at: number | null;
}

/** Last use is recorded at most this often per token, so authenticating stays a read. */
const LAST_USED_EVERY_MS = 60_000;

export class Accounts {
  private readonly revokedListeners = new Set<(tokenId: string) => void>();

  constructor(private readonly db: Db) {}

  /** Creates the first admin account and returns its token, or undefined when accounts exist. */
  bootstrapAdmin(): string | undefined {
    const n = this.db.prepare('SELECT COUNT(*) AS n FROM accounts').get() as { n: number };
    if (n.n > 0) return undefined;
    return this.createAccount('admin', true).token;
  }

  createAccount(name: string, isAdmin = false): { accountId: string; name: string; token: string } {
    // `Admin` next to `admin` is a name made to be mistaken for another: names differ by more than case.
    const exists = this.db.prepare('SELECT name FROM accounts WHERE name = ? COLLATE NOCASE').get(name) as { name: string } | undefined;
    if (exists) throw new HttpError(409, 'exists', `an account named ${exists.name} exists already (names are compared ignoring case)`);
    const accountId = newId('acct');
    let token = '';
    this.db.transaction(() => {
      this.db.prepare('INSERT INTO accounts (id, name, is_admin, created_at) VALUES (?, ?, ?, ?)').run(accountId, name, isAdmin ? 1 : 0, Date.now());
      token = this.createToken(accountId, 'user', 'first token').token;
    })();
    return { accountId, name, token };
  }

  createToken(accountId: string, kind: 'user' | 'worker', label: string, expiresAt?: number): { token: string; info: TokenInfo } {
    const token = newToken(kind);
    const id = newId('tok');
    const now = Date.now();
    // `hth_` or `hthw_` and four characters of the secret: enough to tell tokens apart, far too
    // few to guess the rest.
    const prefix = token.slice(0, token.indexOf('_') + 5);
    this.db
      .prepare('INSERT INTO tokens (hash, id, account_id, kind, label, prefix, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(hashToken(token), id, accountId, kind, label, prefix, now, expiresAt ?? null);
    return { token, info: this.info(id)! };
  }

  /** Who a token belongs to, or why it is refused. */
  check(token: string | undefined, now = Date.now()): AuthResult {
    if (!token) return { ok: false, reason: 'missing token (pass Authorization: Bearer <token>)' };
    const row = this.db
      .prepare(
        `SELECT t.id AS tokenId, t.kind AS kind, t.expires_at AS expiresAt, t.revoked_at AS revokedAt, t.last_used_at AS lastUsedAt,
                a.id AS accountId, a.name AS name, a.is_admin AS isAdmin
         FROM tokens t JOIN accounts a ON a.id = t.account_id WHERE t.hash = ?`,
      )
      .get(hashToken(token)) as
      | { tokenId: string; kind: 'user' | 'worker'; expiresAt: number | null; revokedAt: number | null; lastUsedAt: number | null; accountId: string; name: string; isAdmin: number }
      | undefined;
    if (!row) return { ok: false, reason: 'unknown token' };
    if (row.revokedAt !== null) return { ok: false, reason: `token ${row.tokenId} was revoked; create a new one with \`hearth token create\`` };
    if (row.expiresAt !== null && row.expiresAt <= now) {
      return { ok: false, reason: `token ${row.tokenId} expired at ${new Date(row.expiresAt).toISOString()}; create a new one with \`hearth token create\`` };
    }
    if (row.lastUsedAt === null || row.lastUsedAt < now - LAST_USED_EVERY_MS) {
      this.db.prepare('UPDATE tokens SET last_used_at = ? WHERE id = ?').run(now, row.tokenId);
    }
    return { ok: true, principal: { accountId: row.accountId, name: row.name, isAdmin: row.isAdmin === 1, kind: row.kind, tokenId: row.tokenId } };
  }

  authenticate(token: string | undefined): Principal | undefined {
    const r = this.check(token);
    return r.ok ? r.principal : undefined;
  }

  /** Whether a token (by id) still opens anything: for connections opened with it earlier. */
  isValid(tokenId: string, now = Date.now()): boolean {
    const r = this.db.prepare('SELECT expires_at, revoked_at FROM tokens WHERE id = ?').get(tokenId) as
      | { expires_at: number | null; revoked_at: number | null }
      | undefined;
    return !!r && r.revoked_at === null && (r.expires_at === null || r.expires_at > now);
  }

  /** The account's own tokens, newest first; the secrets are not kept, so none can be shown. */
  list(accountId: string): TokenInfo[] {
    const rows = this.db.prepare('SELECT * FROM tokens WHERE account_id = ? ORDER BY created_at DESC').all(accountId) as TokenRow[];
    return rows.map(toInfo);
  }

  /** Revokes one of the account's own tokens; another account's token is a 404, as if absent. */
  revoke(accountId: string, tokenId: string): TokenInfo {
    const r = this.db.prepare('SELECT * FROM tokens WHERE id = ? AND account_id = ?').get(tokenId, accountId) as TokenRow | undefined;
    if (!r) throw new HttpError(404, 'not_found', `no token ${tokenId} of this account`);
    if (r.revoked_at === null) {
      this.db.prepare('UPDATE tokens SET revoked_at = ? WHERE id = ?').run(Date.now(), tokenId);
      for (const l of this.revokedListeners) l(tokenId);
    }
    return this.info(tokenId)!;
  }

  /**
   * Called with a token's id when it is revoked, after the revocation is stored: whoever holds a
   * connection opened with that token (the worker socket) closes it. Returns the unsubscribe.
   */
  onTokenRevoked(listener: (tokenId: string) => void): () => void {
    this.revokedListeners.add(listener);
    return () => this.revokedListeners.delete(listener);
  }

  private info(id: string): TokenInfo | undefined {
    const r = this.db.prepare('SELECT * FROM tokens WHERE id = ?').get(id) as TokenRow | undefined;
    return r && toInfo(r);
  }
}

function toInfo(r: TokenRow): TokenInfo {
  return {
    id: r.id,
    prefix: r.prefix,
    kind: r.kind,
    label: r.label,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
  };
}
