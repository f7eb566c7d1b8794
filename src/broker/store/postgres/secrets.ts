// Sealed secrets on PostgreSQL (tables of migration 2 in migrations.ts).
import type { SecretInfo } from '../../../shared/protocol';
import type { SealedSecret, SecretRepository } from '../secrets-repo';
import type { Sql } from './sql';

export class PgSecrets implements SecretRepository {
  constructor(private readonly sql: Sql) {}

  async put(s: SealedSecret): Promise<void> {
    await this.sql`INSERT INTO secrets (account_id, name, value, updated_at) VALUES (${s.accountId}, ${s.name}, ${s.sealed}, ${s.updatedAt})
      ON CONFLICT (account_id, name) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`;
  }
  async remove(accountId: string, name: string): Promise<boolean> {
    return (await this.sql`DELETE FROM secrets WHERE account_id = ${accountId} AND name = ${name}`).count > 0;
  }
  async list(accountId: string): Promise<SecretInfo[]> {
    return [...(await this.sql<SecretInfo[]>`SELECT name, updated_at AS "updatedAt" FROM secrets WHERE account_id = ${accountId} ORDER BY name COLLATE "C"`)];
  }
  async all(): Promise<SealedSecret[]> {
    return [...(await this.sql<SealedSecret[]>`SELECT account_id AS "accountId", name, value AS sealed, updated_at AS "updatedAt" FROM secrets`)];
  }
  async ofAccount(accountId: string): Promise<SealedSecret[]> {
    return [...(await this.sql<SealedSecret[]>`SELECT account_id AS "accountId", name, value AS sealed, updated_at AS "updatedAt" FROM secrets WHERE account_id = ${accountId}`)];
  }
  async keyCheck(): Promise<Buffer | undefined> {
    const [r] = await this.sql<{ value: Buffer }[]>`SELECT value FROM secrets_meta WHERE key = 'key_check'`;
    return r?.value;
  }
  async initKeyCheck(sealed: Buffer): Promise<void> {
    await this.sql`INSERT INTO secrets_meta (key, value) VALUES ('key_check', ${sealed}) ON CONFLICT DO NOTHING`;
  }
}
