// Sealed secrets on SQLite (tables of migration 5 in db.ts).
import type { SecretInfo } from '../../../shared/protocol';
import type { SealedSecret, SecretRepository } from '../secrets-repo';
import type { Db } from './db';

export class SqliteSecrets implements SecretRepository {
  private readonly s;

  constructor(db: Db) {
    this.s = {
      put: db.prepare('INSERT OR REPLACE INTO secrets (account_id, name, value, updated_at) VALUES (?, ?, ?, ?)'),
      remove: db.prepare('DELETE FROM secrets WHERE account_id = ? AND name = ?'),
      list: db.prepare<[string], { name: string; updatedAt: number }>('SELECT name, updated_at AS updatedAt FROM secrets WHERE account_id = ? ORDER BY name'),
      all: db.prepare<[], SealedSecret>('SELECT account_id AS accountId, name, value AS sealed, updated_at AS updatedAt FROM secrets'),
      ofAccount: db.prepare<[string], SealedSecret>('SELECT account_id AS accountId, name, value AS sealed, updated_at AS updatedAt FROM secrets WHERE account_id = ?'),
      keyCheck: db.prepare<[], { value: Buffer }>("SELECT value FROM secrets_meta WHERE key = 'key_check'"),
      initKeyCheck: db.prepare("INSERT OR IGNORE INTO secrets_meta (key, value) VALUES ('key_check', ?)"),
    };
  }

  async put(s: SealedSecret): Promise<void> {
    this.s.put.run(s.accountId, s.name, s.sealed, s.updatedAt);
  }
  async remove(accountId: string, name: string): Promise<boolean> {
    return this.s.remove.run(accountId, name).changes > 0;
  }
  async list(accountId: string): Promise<SecretInfo[]> {
    return this.s.list.all(accountId);
  }
  async all(): Promise<SealedSecret[]> {
    return this.s.all.all();
  }
  async ofAccount(accountId: string): Promise<SealedSecret[]> {
    return this.s.ofAccount.all(accountId);
  }
  async keyCheck(): Promise<Buffer | undefined> {
    return this.s.keyCheck.get()?.value;
  }
  async initKeyCheck(sealed: Buffer): Promise<void> {
    this.s.initKeyCheck.run(sealed);
  }
}
