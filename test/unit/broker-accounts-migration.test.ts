// Migration 2 (token ids, expiry, revocation; account names unique ignoring case) on a database
// written by the broker before it: old tokens keep working and colliding names still open.
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccountService } from '../../src/broker/services/accounts';
import { hashToken } from '../../src/broker/ids';
import { MIGRATIONS, openDb } from '../../src/broker/store/sqlite/db';
import { SqliteAccounts } from '../../src/broker/store/sqlite/accounts';

describe('broker: accounts and tokens migration', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'hearth-migrate-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps the oldest of names that differ only by case, renames the others, and keeps old tokens working', async () => {
    const file = join(dir, 'broker.db');
    const old = new Database(file);
    old.exec(MIGRATIONS[0]!);
    old.pragma('user_version = 1');
    const insert = old.prepare('INSERT INTO accounts (id, name, is_admin, created_at) VALUES (?, ?, 0, ?)');
    insert.run('acct_BBBBBBBBBBBBBBBB', 'bob', 1);
    insert.run('acct_AAAAAAAAAAAAAAAA', 'Bob', 2);
    old.prepare("INSERT INTO tokens (hash, account_id, kind, label, created_at) VALUES (?, 'acct_AAAAAAAAAAAAAAAA', 'user', 'old', 3)").run(hashToken('hth_oldtoken'));
    old.close();

    const db = openDb(file);
    try {
      const names = db.prepare('SELECT id, name FROM accounts ORDER BY created_at').all() as { id: string; name: string }[];
      assert.deepEqual(names, [
        { id: 'acct_BBBBBBBBBBBBBBBB', name: 'bob' },
        { id: 'acct_AAAAAAAAAAAAAAAA', name: 'Bob-AAAAAAAAAAAAAAAA' },
      ]);
      const accounts = new AccountService(new SqliteAccounts(db));
      const p = await accounts.authenticate('hth_oldtoken');
      assert.equal(p?.accountId, 'acct_AAAAAAAAAAAAAAAA');
      const [t] = await accounts.list('acct_AAAAAAAAAAAAAAAA');
      assert.match(t!.id, /^tok_[0-9a-f]{20}$/);
      assert.equal(t!.expiresAt, null);
      await assert.rejects(() => accounts.createAccount('BOB'), /exists already/);
      await accounts.revoke('acct_AAAAAAAAAAAAAAAA', t!.id);
      assert.equal(await accounts.authenticate('hth_oldtoken'), undefined);
    } finally {
      db.close();
    }
  });
});
