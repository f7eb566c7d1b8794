import type { Command } from 'commander';
import { z } from 'zod';
import { BrokerClient } from '../client/api';
import { readFileSync } from 'node:fs';
import { resolveConnection, resolveDataDir, UpElsewhere, upElsewherePath, type Connection } from '../client/config';
import { runningUp } from './up-lock';
import { ID_KINDS, idOf, type IdPrefix } from '../shared/protocol';

export interface GlobalFlags {
  broker?: string;
  token?: string;
  dataDir?: string;
  json?: boolean;
}

export class UsageError extends Error {}

export function globals(cmd: Command): GlobalFlags {
  return cmd.optsWithGlobals<GlobalFlags>();
}

/** The connection the last client was made with: what a refusal of its token says it came from. */
export let lastConnection: (Connection & { dataDir: string }) | undefined;

export function clientFor(cmd: Command): BrokerClient {
  const g = globals(cmd);
  let dataDir = resolveDataDir(g.dataDir);
  let conn = resolveConnection({ broker: g.broker, token: g.token, dataDir: g.dataDir });
  // No data dir named and no token found: a `hearth up --data-dir DIR` running now says where it is.
  const elsewhere = !conn.token && g.dataDir === undefined && !process.env.HEARTH_DATA_DIR ? upElsewhere() : undefined;
  if (elsewhere) {
    const there = resolveConnection({ broker: g.broker, token: g.token, dataDir: elsewhere });
    if (there.token) {
      process.stderr.write(`hearth: using the local network of \`hearth up --data-dir ${elsewhere}\` (set HEARTH_DATA_DIR=${elsewhere} to say so)\n`);
      conn = there;
      dataDir = elsewhere;
    }
  }
  if (!conn.token) {
    throw new UsageError(
      `no token for ${conn.brokerUrl}: pass --token, set HEARTH_TOKEN, or run \`hearth up\` (it writes ${dataDir}/config.json)` +
        (g.dataDir === undefined && !process.env.HEARTH_DATA_DIR ? '; a `hearth up --data-dir DIR` is found with HEARTH_DATA_DIR=DIR or --data-dir DIR' : ''),
    );
  }
  lastConnection = { ...conn, dataDir };
  return new BrokerClient({ url: conn.brokerUrl, token: conn.token });
}

/** The data dir of a running `hearth up` started with another one than the default, if any. */
function upElsewhere(): string | undefined {
  try {
    const r = UpElsewhere.safeParse(JSON.parse(readFileSync(upElsewherePath(), 'utf8')));
    if (r.success && runningUp(r.data.dataDir) !== undefined) return r.data.dataDir;
  } catch {
    /* none recorded */
  }
  return undefined;
}

/** Parses a flag's value with a schema, so `--count two` says what is wrong with which flag. */
export function flag<T>(name: string, schema: z.ZodType<T, z.ZodTypeDef, unknown>, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new UsageError(`--${name}: ${r.error.issues[0]?.message ?? 'invalid value'} (got ${JSON.stringify(value)})`);
  return r.data;
}

/** An id argument of one kind, checked before anything is asked of the broker: one clear message. */
export function idArg(prefix: IdPrefix, value: string): string {
  const r = idOf(prefix).safeParse(value);
  if (!r.success) throw new UsageError(`expected a ${ID_KINDS[prefix]} id like ${prefix}_…, got ${JSON.stringify(value)}`);
  return r.data;
}

export const PortFlag = z.coerce.number().int().min(0).max(65535);
export const PositiveNumber = z.coerce.number().positive();
export const PositiveInt = z.coerce.number().int().positive();
export const NonNegative = z.coerce.number().min(0);

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400, w: 7 * 86_400 } as const;

/** `30d`, `12h`, `90m`, `3600s`, `2w` (a bare number is seconds) → whole seconds. */
export const DurationFlag = z
  .string()
  .regex(/^\d+(\.\d+)?[smhdw]?$/, 'expected a duration like 30d, 12h, 90m or 3600s')
  .transform((v) => {
    const unit = /[smhdw]$/.test(v) ? (v.slice(-1) as keyof typeof UNIT_SECONDS) : 's';
    return Math.round(parseFloat(v) * UNIT_SECONDS[unit]);
  })
  .pipe(z.number().int().positive('a duration must be at least one second'));
