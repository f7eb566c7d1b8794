// `hearth broker`, `hearth worker` and `hearth up`: their flags here, their work in server-entry.ts.
import type { Command } from 'commander';
import { readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { resolveDataDir } from '../client/config';
import { flag, globals, NonNegative, PortFlag, PositiveNumber, UsageError } from './context';
import { ByteSize, DEFAULT_KEPT_JOBS_BYTES, DEFAULT_LIMITS, formatBytes, PidCount } from '../worker/limits';
import { DEFAULT_JOB_USER, SANDBOX_MODES, type SandboxMode } from '../worker/sandbox';
import { JOB_NETWORK_MODES, type JobNetworkMode } from '../worker/session-network';
import { DEFAULT_HF_CACHE_MAX_BYTES } from '../worker/hf-cache';
import { DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_JOB_BYTES } from '../worker/tailer';
import { DEFAULT_ENV_CACHE_BYTES } from '../worker/env-cache';
import type * as ServerEntry from './server-entry';
import { stopUp } from './up-lock';

interface WorkerFlags {
  python?: string;
  nvidiaSmi?: string;
  price?: string;
  name?: string;
  killGrace?: string;
  sandbox?: string;
  jobNetwork?: string;
  hide?: string[];
  jobUser?: string;
  jobMemory?: string;
  jobPids?: string;
  jobDisk?: string;
  jobTmp?: string;
  tailMaxFile?: string;
  tailMaxJob?: string;
  hfCacheMax?: string;
  envCacheMax?: string;
  keptJobsMax?: string;
}

/** Loads the server bundle (dist/server.js) on demand; from source (tests via tsx) the module itself. */
function server(): typeof ServerEntry {
  const path = __filename.endsWith('.ts') ? './server-entry' : join(__dirname, 'server.js');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path) as typeof ServerEntry;
}

function workerSettings(f: WorkerFlags): ServerEntry.WorkerSettings {
  return {
    python: f.python,
    nvidiaSmi: f.nvidiaSmi,
    pricePerHour: f.price === undefined ? undefined : flag('price', NonNegative, f.price),
    name: f.name,
    killGraceMs: f.killGrace === undefined ? undefined : flag('kill-grace', NonNegative, f.killGrace) * 1000,
    sandbox: sandboxFlag(f.sandbox),
    jobNetwork: jobNetworkFlag(f.jobNetwork),
    hidePaths: f.hide?.map((p) => resolve(p)),
    jobUser: f.jobUser,
    jobMemoryBytes: size('job-memory', f.jobMemory),
    jobPids: f.jobPids === undefined ? undefined : flag('job-pids', PidCount, f.jobPids),
    jobDiskBytes: size('job-disk', f.jobDisk),
    jobTmpBytes: size('job-tmp', f.jobTmp),
    tailMaxFileBytes: size('tail-max-file', f.tailMaxFile),
    tailMaxJobBytes: size('tail-max-job', f.tailMaxJob),
    hfCacheMaxBytes: f.hfCacheMax === undefined ? undefined : f.hfCacheMax.trim() === '0' ? 0 : size('hf-cache-max', f.hfCacheMax),
    envCacheMaxBytes: size('env-cache-max', f.envCacheMax),
    keptJobsMaxBytes: f.keptJobsMax === undefined ? undefined : f.keptJobsMax.trim() === '0' ? 0 : size('kept-jobs-max', f.keptJobsMax),
  };
}

const size = (name: string, v: string | undefined) => (v === undefined ? undefined : flag(name, ByteSize, v));

function sandboxFlag(v: string | undefined): SandboxMode | undefined {
  if (v === undefined) return undefined;
  if (!(SANDBOX_MODES as readonly string[]).includes(v)) throw new UsageError(`--sandbox must be one of ${SANDBOX_MODES.join(', ')} (got ${JSON.stringify(v)})`);
  return v as SandboxMode;
}

function jobNetworkFlag(v: string | undefined): JobNetworkMode | undefined {
  if (v === undefined) return undefined;
  if (!(JOB_NETWORK_MODES as readonly string[]).includes(v)) throw new UsageError(`--job-network must be one of ${JOB_NETWORK_MODES.join(', ')} (got ${JSON.stringify(v)})`);
  return v as JobNetworkMode;
}

/**
 * The worker's token: from --token-file, else --token (which every local user can read in `ps`,
 * so it is scrubbed from this process's command line and warned about), else HEARTH_WORKER_TOKEN
 * or HEARTH_TOKEN.
 */
function workerToken(flagToken: string | undefined, tokenFile: string | undefined): string | undefined {
  if (tokenFile !== undefined) {
    if (flagToken !== undefined) throw new UsageError('pass the worker token one way: --token-file or --token, not both');
    return readTokenFile(tokenFile);
  }
  if (flagToken !== undefined) {
    process.stderr.write(
      'hearth: warning: a token given with --token shows in `ps` to every user of this host; use --token-file FILE (mode 0600) or HEARTH_TOKEN\n',
    );
    // Rewrites the command line /proc shows (on Linux the title takes over argv's memory); the
    // token was still visible until now, hence the warning.
    process.title = 'hearth worker';
    return flagToken;
  }
  const fromEnv = process.env.HEARTH_WORKER_TOKEN || process.env.HEARTH_TOKEN || undefined;
  // Whatever the job environment allows through, the token is not in it to pass on.
  delete process.env.HEARTH_WORKER_TOKEN;
  delete process.env.HEARTH_TOKEN;
  return fromEnv;
}

function readTokenFile(file: string): string {
  let st;
  try {
    st = statSync(file);
  } catch (err) {
    throw new UsageError(`--token-file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!st.isFile()) throw new UsageError(`--token-file ${file}: not a file`);
  // A token others can read is a token others have: refuse rather than use it.
  if ((st.mode & 0o077) !== 0) {
    throw new UsageError(
      `--token-file ${file} is readable or writable by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); run: chmod 600 ${file}`,
    );
  }
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
    throw new UsageError(`--token-file ${file} belongs to another user (uid ${st.uid}); it must be this user's own file`);
  }
  const token = readFileSync(file, 'utf8').trim();
  if (!token) throw new UsageError(`--token-file ${file} is empty`);
  return token;
}

export function registerServerCommands(program: Command): void {
  const workerFlags = (c: Command) =>
    c
      .option('--python <path>', 'Python interpreter that runs jobs (default: the first of python3, /usr/bin/python3 that can run notebooks, else python3)')
      .option('--nvidia-smi <path>', 'nvidia-smi to query GPUs with', 'nvidia-smi')
      .option('--price <credits>', 'price of one device per hour')
      .option('--name <name>', 'name shown in offers', hostname())
      .option('--kill-grace <seconds>', 'seconds between SIGTERM and SIGKILL when a job is stopped')
      .option('--sandbox <mode>', 'confine jobs with bubblewrap: auto (when it works here), bwrap (required) or none', 'auto')
      .option('--job-network <mode>', 'what a session\'s own network reaches besides its loopback: internet (through user-mode NAT; never this host, its LAN or other sessions) or none (default internet)')
      .option('--hide <dir>', 'another folder sandboxed jobs must not see, e.g. a broker\'s data dir (repeatable)', (v: string, all: string[] = []) => [...all, v])
      .option('--job-user <user>', `who jobs run as when the worker runs as root: a name, uid or uid:gid, never root (default ${DEFAULT_JOB_USER})`)
      .option('--job-memory <size>', `memory of one job, its /tmp and /dev/shm included, e.g. 8G (default ${formatBytes(DEFAULT_LIMITS.memoryBytes)})`)
      .option('--job-pids <n>', `processes and threads of one job (default ${DEFAULT_LIMITS.pids})`)
      .option('--job-disk <size>', `what one job may keep in its folder and home (default ${formatBytes(DEFAULT_LIMITS.diskBytes)})`)
      .option('--job-tmp <size>', `size of one job's in-memory /tmp, and of its /dev/shm (default ${formatBytes(DEFAULT_LIMITS.tmpBytes)})`)
      .option('--tail-max-file <size>', `bytes of one TensorBoard file the worker reads (default ${formatBytes(DEFAULT_MAX_FILE_BYTES)})`)
      .option('--tail-max-job <size>', `bytes of one job's TensorBoard files the worker reads (default ${formatBytes(DEFAULT_MAX_JOB_BYTES)})`)
      .option('--hf-cache-max <size>', `size of the per-account Hugging Face caches together, least recently used models evicted; 0 turns them off (default ${formatBytes(DEFAULT_HF_CACHE_MAX_BYTES)})`)
      .option('--env-cache-max <size>', `disk for the environments built from runs' requirements; least recently used go past it (default ${formatBytes(DEFAULT_ENV_CACHE_BYTES)})`)
      .option('--kept-jobs-max <size>', `disk the folders of finished jobs kept for you to look into may take together, the oldest removed first; 0 keeps none (default ${formatBytes(DEFAULT_KEPT_JOBS_BYTES)})`);

  program
    .command('broker')
    .description('run a broker (HTTP + WebSocket; SQLite and blobs under the data dir)')
    .option('--port <port>', 'port to listen on', '7777')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--upload-stall <seconds>', 'cut an upload that brings less than 16 KiB in this many seconds', '30')
    .option('--database <url>', 'a postgres:// URL shared by every replica (else HEARTH_DATABASE, else SQLite in the data dir)')
    .option('--secrets-key-file <file>', 'key (32 bytes, hex or base64; mode 0600) that seals renters\' secrets (else HEARTH_SECRETS_KEY, else <data-dir>/secrets.key, made on first start)')
    .option('--blobs <where>', 'where blob bytes live: folder (<data-dir>/blobs) or s3://BUCKET[/PREFIX]?endpoint=URL&region=R&forcePathStyle=true (keys from HEARTH_S3_ACCESS_KEY_ID/HEARTH_S3_SECRET_ACCESS_KEY or AWS_*); default HEARTH_BLOBS, else folder')
    .option('--prepaid', 'renters need credits (`hearth admin grant`, or a payment provider posting to the signed webhook, secret in HEARTH_PAYMENT_WEBHOOK_SECRET): a lease holds its cost in escrow and stops when the balance runs out')
    .action(async (o: { port: string; host: string; uploadStall: string; database?: string; secretsKeyFile?: string; blobs?: string; prepaid?: boolean }, cmd: Command) => {
      const dataDir = resolveDataDir(globals(cmd).dataDir);
      const uploadStallMs = Math.round(flag('upload-stall', PositiveNumber, o.uploadStall) * 1000);
      const database = o.database ?? (process.env.HEARTH_DATABASE || undefined);
      // Checked here without echoing it: the URL may hold a password.
      if (database !== undefined && !/^postgres(ql)?:\/\/[^\s]+$/.test(database)) throw new UsageError('--database / HEARTH_DATABASE: give a postgres://user:password@host:port/db URL');
      const secretsKeyFile = o.secretsKeyFile === undefined ? undefined : resolve(o.secretsKeyFile);
      const blobs = o.blobs ?? process.env.HEARTH_BLOBS ?? 'folder';
      await server().runBroker({ dataDir, port: flag('port', PortFlag, o.port), host: o.host, uploadStallMs, database, secretsKeyFile, blobs, credit: o.prepaid ? 'prepaid' : 'open' });
    });

  workerFlags(
    program
      .command('worker')
      .description('run a worker agent on this host: connects out to a broker and runs jobs on its GPUs')
      .option('--work-dir <dir>', 'folder for job files and the blob cache (default <data-dir>/worker)')
      .option('--token-file <file>', 'read the worker token from this file (mode 0600): unlike --token, it does not show in ps'),
  ).action(async (o: WorkerFlags & { workDir?: string; tokenFile?: string }, cmd: Command) => {
    const g = globals(cmd);
    const brokerUrl = g.broker ?? process.env.HEARTH_BROKER_URL;
    const token = workerToken(g.token, o.tokenFile);
    if (!brokerUrl || !token) {
      throw new UsageError(
        'hearth worker needs --broker URL and a worker token (`hearth token create --worker`): --token-file FILE (mode 0600) or HEARTH_TOKEN',
      );
    }
    const dataDir = resolveDataDir(g.dataDir);
    const workDir = o.workDir ?? join(dataDir, 'worker');
    // The data dir holds this user's tokens and config.json: jobs must not see it.
    const settings = workerSettings(o);
    await server().runWorker({ brokerUrl, token, workDir, ...settings, hidePaths: [dataDir, ...(settings.hidePaths ?? [])] });
  });

  workerFlags(
    program
      .command('up')
      .description('start a broker and a worker for this machine: the local network a newcomer starts with')
      .option('--port <port>', 'broker port (0 picks a free one)', '7777')
      .option('--verbose', 'print the worker log'),
  ).action(async (o: WorkerFlags & { port: string; verbose?: boolean }, cmd: Command) => {
    const dataDir = resolveDataDir(globals(cmd).dataDir);
    await server().runUp({ dataDir, port: flag('port', PortFlag, o.port), verbose: !!o.verbose, ...workerSettings(o) });
  });

  program
    .command('down')
    .description('stop the `hearth up` of this data dir (its broker and worker), as Ctrl-C in its terminal would')
    .action(async (_o: unknown, cmd: Command) => {
      const dataDir = resolveDataDir(globals(cmd).dataDir);
      const r = await stopUp(dataDir);
      if (r.pid === undefined) {
        process.stderr.write(`hearth: no hearth up is running on ${dataDir}${r.stale ? ' (removed the lock a stopped one left)' : ''}\n`);
        return;
      }
      process.stderr.write(r.killed ? `hearth: hearth up (pid ${r.pid}) did not stop in time and was killed\n` : `hearth: stopped hearth up (pid ${r.pid}) on ${dataDir}\n`);
    });
}
