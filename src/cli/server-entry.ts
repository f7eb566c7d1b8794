// The server side of the CLI (broker, worker, `hearth up`), bundled apart as dist/server.js so that
// client commands like `hearth run` do not load Fastify, SQLite and the worker at start-up.
import { mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import { defaultDataDir, saveConfig, upElsewherePath, writePrivateFile } from '../client/config';
import { onShutdownSignals, readAdminToken, startBroker } from '../broker/server';
import { startWorker, type RunningWorker, type WorkerOptions } from '../worker/main';
import { brokerLogger } from './broker-log';
import { acquireUpLock } from './up-lock';
import { VERSION } from './version';

export type WorkerSettings = Pick<
  WorkerOptions,
  | 'python' | 'nvidiaSmi' | 'pricePerHour' | 'name' | 'killGraceMs' | 'sandbox' | 'jobNetwork' | 'hidePaths'
  | 'jobUser' | 'jobMemoryBytes' | 'jobPids' | 'jobDiskBytes' | 'jobTmpBytes' | 'tailMaxFileBytes' | 'tailMaxJobBytes' | 'hfCacheMaxBytes'
  | 'envCacheMaxBytes' | 'keptJobsMaxBytes'
>;

/** A service's log: one JSON object a line, with workerId/jobId fields, on stderr. */
function workerLog(verbose: boolean): WorkerOptions['log'] {
  return (level, msg, fields) => {
    if (level === 'debug' && !verbose) return;
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, component: 'worker', msg, ...fields }) + '\n');
  };
}

/** `hearth up` in a person's terminal: only what needs their attention, in words. */
function quietWorkerLog(): WorkerOptions['log'] {
  return (level, msg, fields) => {
    if (level !== 'warn' && level !== 'error') return;
    const job = typeof fields?.jobId === 'string' ? ` (${fields.jobId})` : '';
    process.stderr.write(`hearth: worker ${level === 'error' ? 'error' : 'warning'}${job}: ${msg}\n`);
  };
}

export async function runBroker(o: { dataDir: string; port: number; host: string; uploadStallMs?: number; database?: string | undefined; secretsKeyFile?: string | undefined; blobs?: string; credit?: 'open' | 'prepaid' }): Promise<void> {
  const b = await startBroker(
    {
      dataDir: o.dataDir,
      version: VERSION,
      port: o.port,
      host: o.host,
      ...(o.uploadStallMs ? { uploadStallMs: o.uploadStallMs } : {}),
      ...(o.database ? { database: o.database } : {}),
      ...(o.secretsKeyFile ? { secretsKeyFile: o.secretsKeyFile } : {}),
      ...(o.blobs ? { blobs: o.blobs } : {}),
      ...(o.credit ? { credit: o.credit } : {}),
    },
    brokerLogger(),
  );
  if (b.adminToken) process.stderr.write(`hearth: first start; admin token (shown once, also in ${b.adminTokenPath}):\n${b.adminToken}\n`);
  process.stderr.write(`hearth: broker listening on ${b.url}\n`);
  onShutdownSignals(() => b.close());
}

export async function runWorker(o: WorkerSettings & { brokerUrl: string; token: string; workDir: string }): Promise<void> {
  const w = startWorker({ ...o, log: workerLog(false) });
  onShutdownSignals(() => w.stop(), 60_000);
  // A refused token or protocol will not get better by retrying: stop and say why.
  await w.workerId.catch(async (err: unknown) => {
    await w.stop();
    throw err;
  });
  // Later too: a token revoked or expired while connected ends the worker, with why.
  void w.refused.then(async (why) => {
    process.stderr.write(`hearth: ${why}\n`);
    await w.stop();
    process.exit(1);
  });
}

export async function runUp(o: WorkerSettings & { dataDir: string; port: number; verbose: boolean }): Promise<void> {
  const { dataDir } = o;
  mkdirSync(join(dataDir, 'logs'), { recursive: true, mode: 0o700 });
  // Before the port: a second `hearth up` on this data dir (any port) refuses, naming the first.
  acquireUpLock(dataDir, dataDir === join(homedir(), '.hearth') ? '' : ` --data-dir ${dataDir}`);
  const b = await startBroker({ dataDir, version: VERSION, port: o.port }, brokerLogger({ file: join(dataDir, 'logs', 'broker.log') }));
  const local: { worker?: RunningWorker } = {};
  onShutdownSignals(async () => {
    process.stderr.write('hearth: stopping the worker and the broker…\n');
    await local.worker?.stop();
    await b.close();
  }, 60_000);

  const adminToken = b.adminToken ?? readAdminToken(dataDir);
  if (!adminToken) throw new Error(`${b.adminTokenPath} is missing; cannot find this broker's admin token`);
  const workerTokenPath = join(dataDir, 'worker-token');
  let workerToken: string;
  try {
    workerToken = readFileSync(workerTokenPath, 'utf8').trim();
    if (!(await b.broker.authenticate(workerToken))) throw new Error('stale');
  } catch {
    const admin = await b.broker.authenticate(adminToken);
    if (!admin) throw new Error(`the admin token in ${b.adminTokenPath} is not known to this broker`);
    workerToken = await b.broker.createToken(admin.accountId, 'worker', `local worker on ${hostname()}`);
    writePrivateFile(workerTokenPath, workerToken + '\n');
  }
  saveConfig(dataDir, { brokerUrl: b.url, token: adminToken });
  // Another data dir than the default: the CLI, run with none named, finds this one while it runs.
  const elsewhere = dataDir !== defaultDataDir();
  if (elsewhere) {
    try {
      mkdirSync(defaultDataDir(), { recursive: true, mode: 0o700 });
      writePrivateFile(upElsewherePath(), JSON.stringify({ dataDir }) + '\n');
      process.on('exit', () => {
        try {
          if (readFileSync(upElsewherePath(), 'utf8').includes(JSON.stringify(dataDir))) unlinkSync(upElsewherePath());
        } catch {
          /* already gone */
        }
      });
    } catch {
      /* a home we cannot write: the printed HEARTH_DATA_DIR line still says how */
    }
  }

  const { verbose, port: _port, dataDir: _d, ...settings } = o;
  const worker = startWorker({
    ...settings,
    brokerUrl: b.url,
    token: workerToken,
    workDir: join(dataDir, 'worker'),
    // The data dir holds the admin token, worker-token and config.json: jobs must not see it.
    hidePaths: [dataDir, ...(settings.hidePaths ?? [])],
    pricePerHour: settings.pricePerHour ?? 0,
    log: verbose ? workerLog(true) : quietWorkerLog(),
  });
  local.worker = worker;
  // Its token revoked (or expired) while up: the broker stays, the local worker stops and says how
  // to get it back (a new start makes a new worker token), rather than retry for ever.
  void worker.refused.then(async (why) => {
    process.stderr.write(`hearth: the local worker stopped: ${why}. Restart \`hearth up\` to give it a new token.\n`);
    await worker.stop();
  });
  await worker.workerId;
  const dev = (await b.broker.offers()).map((x) => `${x.total}× ${x.gpuModel}`).join(', ') || 'no devices';
  process.stdout.write(`Hearth is up at ${b.url}\n`);
  if (b.adminToken) {
    process.stderr.write(`  admin token (shown this once; also in ${b.adminTokenPath}, mode 0600):\n  ${b.adminToken}\n`);
  }
  process.stderr.write(
    `  worker: ${dev}\n  config: ${join(dataDir, 'config.json')} (the CLI and the VS Code extension read it)\n` +
      (elsewhere ? `  CLI:    HEARTH_DATA_DIR=${dataDir} (or --data-dir ${dataDir}); while this runs, a CLI with no data dir named finds it too\n` : '') +
      `  try:    hearth gpus   ·   hearth run src/train.py (in examples/quickstart)\n  logs:   ${join(dataDir, 'logs', 'broker.log')}\n  Ctrl-C (or \`hearth down${elsewhere ? ` --data-dir ${dataDir}` : ''}\`) stops both.\n`,
  );
}
