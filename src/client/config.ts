// Where the CLI keeps its state, and how a command finds its broker: flags, else environment,
// else config.json in the data dir (written by `hearth up`, mode 0600 because it holds a token).
import { z } from 'zod';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export const CliConfig = z
  .object({
    brokerUrl: z.string().url().optional(),
    token: z.string().min(1).optional(),
  })
  .passthrough();
export type CliConfig = z.infer<typeof CliConfig>;

export function resolveDataDir(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  const dir = flag ?? (env.HEARTH_DATA_DIR || join(homedir(), '.hearth'));
  return resolve(dir);
}

export function configPath(dataDir: string): string {
  return join(dataDir, 'config.json');
}

export function loadConfig(dataDir: string): CliConfig {
  let text: string;
  try {
    text = readFileSync(configPath(dataDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new Error(`${configPath(dataDir)} is not valid JSON; fix or delete it`);
  }
  const parsed = CliConfig.safeParse(data);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new Error(`${configPath(dataDir)}: ${i?.path.join('.') || '(root)'}: ${i?.message}`);
  }
  return parsed.data;
}

/** Writes a file only its owner can read, atomically (a reader never sees half of it). */
export function writePrivateFile(path: string, content: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

export function saveConfig(dataDir: string, cfg: CliConfig): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writePrivateFile(configPath(dataDir), JSON.stringify(cfg, null, 2) + '\n');
}

export interface Connection {
  brokerUrl: string;
  token: string | undefined;
  /** where the token came from, for a refusal to name: `--token`, `HEARTH_TOKEN` or the config file */
  tokenFrom?: string;
}

export function resolveConnection(
  flags: { broker?: string | undefined; token?: string | undefined; dataDir?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
): Connection {
  // An empty variable (`export HEARTH_TOKEN=`) is an unset one.
  const envUrl = env.HEARTH_BROKER_URL || undefined;
  const envToken = env.HEARTH_TOKEN || undefined;
  const needConfig = !(flags.broker ?? envUrl) || !(flags.token ?? envToken);
  const cfg = needConfig ? loadConfig(resolveDataDir(flags.dataDir, env)) : {};
  const brokerUrl = flags.broker ?? envUrl ?? cfg.brokerUrl ?? 'http://127.0.0.1:7777';
  const token = flags.token ?? envToken ?? cfg.token;
  const tokenFrom = flags.token ? '--token' : envToken ? 'HEARTH_TOKEN' : cfg.token ? configPath(resolveDataDir(flags.dataDir, env)) : undefined;
  return { brokerUrl, token, ...(tokenFrom ? { tokenFrom } : {}) };
}

/** The data dir used when neither --data-dir nor HEARTH_DATA_DIR names one. */
export function defaultDataDir(): string {
  return join(homedir(), '.hearth');
}

/**
 * Where a `hearth up` started with another data dir says it runs (written by it into the default
 * data dir while it runs), so that a CLI with no data dir named still finds the local network.
 */
export function upElsewherePath(): string {
  return join(defaultDataDir(), 'up-elsewhere.json');
}

export const UpElsewhere = z.object({ dataDir: z.string().min(1) });
