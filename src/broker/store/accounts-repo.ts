import type { AuthRow, NewToken, TokenRow } from './rows';

/** Accounts and their tokens (a token's secret is stored only as its sha256). */
export interface AccountsRepo {
  count(): Promise<number>;
  /** the account whose name equals `name` ignoring case */
  findByName(name: string): Promise<{ id: string; name: string } | undefined>;
  /** creates the account and its first token in one transaction */
  create(account: { id: string; name: string; isAdmin: boolean; createdAt: number }, firstToken: NewToken): Promise<void>;
  insertToken(t: NewToken): Promise<void>;
  authByHash(hash: string): Promise<AuthRow | undefined>;
  touchToken(tokenId: string, at: number): Promise<void>;
  token(tokenId: string): Promise<TokenRow | undefined>;
  tokensOf(accountId: string): Promise<TokenRow[]>;
  revokeToken(tokenId: string, at: number): Promise<void>;
}
