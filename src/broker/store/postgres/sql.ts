import postgres from 'postgres';

export type Sql = postgres.Sql;
/** A connection or a transaction: repositories take either. */
export type Q = postgres.Sql | postgres.TransactionSql;

/** int8 (bigint) columns hold epoch milliseconds and counters, well inside 2^53: read them as numbers. */
const bigintAsNumber = { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) };

export function connect(url: string, max = 10): Sql {
  return postgres(url, {
    max,
    onnotice: () => {},
    types: { bigint: bigintAsNumber },
    // A replica must not hang for ever on a database that vanished: fail, and let the caller retry.
    connect_timeout: 10,
  }) as unknown as Sql;
}
