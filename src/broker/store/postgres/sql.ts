import postgres from 'postgres';

export type Sql = postgres.Sql;
/** A connection or a transaction: repositories take either. */
export type Q = postgres.Sql | postgres.TransactionSql | postgres.ReservedSql;

/** int8 (bigint) columns hold epoch milliseconds and counters, well inside 2^53: read them as numbers. */
const bigintAsNumber = { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) };

/** Each query pool's own pool for transactions (see transaction()). */
const txPools = new WeakMap<Sql, Sql>();

/**
 * Two pools: one for single statements, which postgres.js pipelines (many followers' reads share
 * a connection), and one whose connections only ever hold a transaction: reserve() waits for an
 * idle connection, which a pool busy with pipelined reads rarely has.
 */
export function connect(url: string, max = 20): Sql {
  const q = pool(url, max);
  txPools.set(q, pool(url, max));
  return q;
}

export async function disconnect(sql: Sql): Promise<void> {
  await txPools.get(sql)?.end({ timeout: 5 });
  await sql.end({ timeout: 5 });
}

function pool(url: string, max: number): Sql {
  return postgres(url, {
    max,
    onnotice: () => {},
    types: { bigint: bigintAsNumber },
    // A replica must not hang for ever on a database that vanished: fail, and let the caller retry.
    connect_timeout: 10,
  }) as unknown as Sql;
}

/**
 * Runs fn in a transaction on a connection of its own. Not sql.begin: in postgres.js 3.4.x a BEGIN
 * that lands on a busy connection's pipeline can skip the reservation (porsager/postgres#823,
 * #1189: UNSAFE_TRANSACTION under load, or worse, other queries inside the transaction). reserve()
 * takes only an idle connection out of the pool, so the transaction has it to itself.
 */
export async function transaction<T>(sql: Sql, fn: (tx: postgres.ReservedSql) => Promise<T>): Promise<T> {
  const c = await (txPools.get(sql) ?? sql).reserve();
  try {
    await c`BEGIN`;
    let result: T;
    try {
      result = await fn(c);
    } catch (err) {
      await c`ROLLBACK`.catch(() => {});
      throw err;
    }
    await c`COMMIT`;
    return result;
  } finally {
    c.release();
  }
}
