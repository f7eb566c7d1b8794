// Which database the broker tests run on. Unset: SQLite in each test's data dir (the default).
// HEARTH_TEST_DATABASE=postgres://user@host:port/db: PostgreSQL, where each broker a test starts
// gets a database of its own (CREATE DATABASE), so tests never see each other's rows.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import postgres from 'postgres';

export const TEST_DATABASE = process.env.HEARTH_TEST_DATABASE || undefined;

/** A fresh, empty database URL for one broker, or undefined on SQLite. */
export async function freshDatabase(): Promise<string | undefined> {
  if (!TEST_DATABASE) return undefined;
  const name = `hearth_t_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = postgres(TEST_DATABASE, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end({ timeout: 1 });
  }
  const u = new URL(TEST_DATABASE);
  u.pathname = `/${name}`;
  return u.toString();
}

/** The broker options that pick the test's backend: `{ database }` on PostgreSQL, nothing on SQLite. */
export async function backendOptions(): Promise<{ database?: string }> {
  const database = await freshDatabase();
  return database ? { database } : {};
}

// One database per data dir: a broker restarted on the same data dir finds its rows again.
const byDataDir = new Map<string, Promise<string | undefined>>();

/** Like backendOptions, but the same database each time for one data dir. */
export async function backendFor(dataDir: string): Promise<{ database?: string }> {
  let p = byDataDir.get(dataDir);
  if (!p) byDataDir.set(dataDir, (p = freshDatabase()));
  const database = await p;
  return database ? { database } : {};
}

/** The flags `hearth broker` takes for the test's backend, the same database each time for one data dir. */
export async function backendFlagsFor(dataDir: string): Promise<string[]> {
  const { database } = await backendFor(dataDir);
  return database ? ['--database', database] : [];
}

/**
 * Rows of a query on the database of the broker of `dataDir` (its SQLite file, or the PostgreSQL
 * database backendFor gave it), for tests that check what was stored. `?` marks a parameter.
 */
export async function selectRows<T>(dataDir: string, query: string, ...params: (string | number)[]): Promise<T[]> {
  const { database } = await backendFor(dataDir);
  if (!database) {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(join(dataDir, 'broker.db'), { readonly: true });
    try {
      return db.prepare(query).all(...params) as T[];
    } finally {
      db.close();
    }
  }
  let n = 0;
  const sql = postgres(database, { max: 1, onnotice: () => {} });
  try {
    return [...(await sql.unsafe(query.replace(/\?/g, () => `$${++n}`), params))] as T[];
  } finally {
    await sql.end({ timeout: 1 });
  }
}
