// Accounts and tokens. A token is shown once, at creation; the broker keeps its sha256, an id to
// list and revoke it by, and the first characters of its text so a person can tell tokens apart.
// A token may expire; a revoked or expired one is refused at once, with a reason that says which.
import type { TokenInfo } from '../../shared/protocol';
import { conflict, DomainError, notFound } from '../errors';
import { hashToken, newId, newToken } from '../ids';
import type { AccountsRepo } from '../store/accounts-repo';
import type { TokenRow } from '../store/rows';

export interface Principal {
  accountId: string;
  name: string;
  isAdmin: boolean;
  kind: 'user' | 'worker';
  /** the id of the token presented, so what it opened (a worker socket) can close when it is revoked */
  tokenId: string;
}

export type AuthResult = { ok: true; principal: Principal } | { ok: false; reason: string };

/** Last use is recorded at most this often per token, so authenticating stays a read. */
const LAST_USED_EVERY_MS = 60_000;

export class AccountService {
  private readonly revokedListeners = new Set<(tokenId: string) => void>();

  constructor(private readonly repo: AccountsRepo) {}

  /** Creates the first admin account and returns its token, or undefined when accounts exist. */
  async bootstrapAdmin(): Promise<string | undefined> {
    if ((await this.repo.count()) > 0) return undefined;
    try {
      return (await this.createAccount('admin', true)).token;
    } catch (err) {
      // Another replica starting at the same moment made it first.
      if (err instanceof DomainError && err.code === 'exists') return undefined;
      throw err;
    }
  }

  async createAccount(name: string, isAdmin = false): Promise<{ accountId: string; name: string; token: string }> {
    // `Admin` next to `admin` is a name made to be mistaken for another: names differ by more than case.
    const exists = await this.repo.findByName(name);
    if (exists) throw conflict('exists', `an account named ${exists.name} exists already (names are compared ignoring case)`);
    const accountId = newId('acct');
    const { token, row } = this.newToken(accountId, 'user', 'first token');
    try {
      await this.repo.create({ id: accountId, name, isAdmin, createdAt: Date.now() }, row);
    } catch (err) {
      // Two replicas (or two requests) creating one name: the unique index refuses the second.
      if (await this.repo.findByName(name)) throw conflict('exists', `an account named ${name} exists already (names are compared ignoring case)`);
      throw err;
    }
    return { accountId, name, token };
  }

  private newToken(accountId: string, kind: 'user' | 'worker', label: string, expiresAt?: number) {
    const token = newToken(kind);
    // `hth_` or `hthw_` and four characters of the secret: enough to tell tokens apart, far too
    // few to guess the rest.
    const prefix = token.slice(0, token.indexOf('_') + 5);
    const row = { hash: hashToken(token), id: newId('tok'), account_id: accountId, kind, label, prefix, created_at: Date.now(), expires_at: expiresAt ?? null };
    return { token, row };
  }

  async createToken(accountId: string, kind: 'user' | 'worker', label: string, expiresAt?: number): Promise<{ token: string; info: TokenInfo }> {
    const { token, row } = this.newToken(accountId, kind, label, expiresAt);
    await this.repo.insertToken(row);
    return { token, info: (await this.info(row.id))! };
  }

  /** Who a token belongs to, or why it is refused. */
  async check(token: string | undefined, now = Date.now()): Promise<AuthResult> {
    if (!token) return { ok: false, reason: 'missing token (pass Authorization: Bearer <token>)' };
    const row = await this.repo.authByHash(hashToken(token));
    if (!row) return { ok: false, reason: 'unknown token' };
    if (row.revokedAt !== null) return { ok: false, reason: `token ${row.tokenId} was revoked; create a new one with \`hearth token create\`` };
    if (row.expiresAt !== null && row.expiresAt <= now) {
      return { ok: false, reason: `token ${row.tokenId} expired at ${new Date(row.expiresAt).toISOString()}; create a new one with \`hearth token create\`` };
    }
    if (row.lastUsedAt === null || row.lastUsedAt < now - LAST_USED_EVERY_MS) await this.repo.touchToken(row.tokenId, now);
    return { ok: true, principal: { accountId: row.accountId, name: row.name, isAdmin: Number(row.isAdmin) === 1, kind: row.kind, tokenId: row.tokenId } };
  }

  async authenticate(token: string | undefined): Promise<Principal | undefined> {
    const r = await this.check(token);
    return r.ok ? r.principal : undefined;
  }

  /** Whether a token (by id) still opens anything: for connections opened with it earlier. */
  async isValid(tokenId: string, now = Date.now()): Promise<boolean> {
    const r = await this.repo.token(tokenId);
    return !!r && r.revoked_at === null && (r.expires_at === null || r.expires_at > now);
  }

  /** The account's own tokens, newest first; the secrets are not kept, so none can be shown. */
  async list(accountId: string): Promise<TokenInfo[]> {
    return (await this.repo.tokensOf(accountId)).map(toInfo);
  }

  /** Revokes one of the account's own tokens; another account's token is not found, as if absent. */
  async revoke(accountId: string, tokenId: string): Promise<TokenInfo> {
    const r = await this.repo.token(tokenId);
    if (!r || r.account_id !== accountId) throw notFound(`no token ${tokenId} of this account`);
    if (r.revoked_at === null) {
      await this.repo.revokeToken(tokenId, Date.now());
      for (const l of this.revokedListeners) l(tokenId);
    }
    return (await this.info(tokenId))!;
  }

  /**
   * Called with a token's id when it is revoked, after the revocation is stored: whoever holds a
   * connection opened with that token (the worker socket) closes it. Returns the unsubscribe.
   * (Another replica's sockets close within a second: each replica checks its sockets' tokens.)
   */
  onTokenRevoked(listener: (tokenId: string) => void): () => void {
    this.revokedListeners.add(listener);
    return () => this.revokedListeners.delete(listener);
  }

  private async info(id: string): Promise<TokenInfo | undefined> {
    const r = await this.repo.token(id);
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
