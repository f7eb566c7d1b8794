// Where a renter's sealed secrets live (src/broker/secrets.ts seals and opens them). Implemented in
// sqlite/secrets.ts (migration 5) and postgres/secrets.ts (migration 2).
import type { SecretInfo } from '../../shared/protocol';

export interface SealedSecret {
  accountId: string;
  name: string;
  sealed: Buffer;
  updatedAt: number;
}

/** Every method is one statement. */
export interface SecretRepository {
  /** insert or replace */
  put(s: SealedSecret): Promise<void>;
  /** true when there was one */
  remove(accountId: string, name: string): Promise<boolean>;
  list(accountId: string): Promise<SecretInfo[]>;
  /** every sealed secret (at start) */
  all(): Promise<SealedSecret[]>;
  /** one account's sealed secrets (read again at each dispatch: another replica may have changed them) */
  ofAccount(accountId: string): Promise<SealedSecret[]>;
  /** the sealed key check value, if this store has one */
  keyCheck(): Promise<Buffer | undefined>;
  /** stores the key check value unless one is there already */
  initKeyCheck(sealed: Buffer): Promise<void>;
}
