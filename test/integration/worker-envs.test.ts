// Python environments on the worker, for real: real venvs, real pip, a wheelhouse built here from
// a tiny local package, a real broker and worker, real bubblewrap.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BrokerClient } from '../../src/client/api';
import { startBroker, type RunningBroker } from '../../src/broker/server';
import { startWorker, type RunningWorker, type WorkerOptions } from '../../src/worker/main';
import { finalStatus, follow, logOf, submit } from './in-process-jobs';
import { buildWheel, makeVenv } from './wheelhouse';

// Not under /tmp: the sandbox's own tmpfs over /tmp would hide it.
const TEST_TMP = join(__dirname, '..', '..', '.test-tmp');

interface Net {
  dir: string;
  broker: RunningBroker;
  client: BrokerClient;
  worker: RunningWorker;
  workerLog: string[];
  leaseId?: string;
}

async function startNet(dir: string, opts: Partial<WorkerOptions>): Promise<Net> {
  const dataDir = join(dir, 'data');
  const broker = await startBroker({ dataDir, port: 0, heartbeatMs: 500 });
  const client = new BrokerClient({ url: broker.url, token: broker.adminToken! });
  const { token } = await client.createToken('worker', 'test worker');
  const workerLog: string[] = [];
  const worker = startWorker({
    brokerUrl: broker.url,
    token,
    workDir: join(dataDir, 'worker'),
    hidePaths: [dataDir],
    name: 'envs-worker',
    nvidiaSmi: join(dir, 'no-nvidia-smi'),
    killGraceMs: 1500,
    log: (level, msg, fields) => workerLog.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`),
    ...opts,
  });
  await worker.workerId;
  return { dir, broker, client, worker, workerLog };
}

async function stopNet(net: Net): Promise<void> {
  await net.worker.stop();
  await net.broker.close();
}

describe('worker: a provider\'s virtual environment as --python, under the default sandbox', function () {
  this.timeout(180_000);
  let dir: string;
  let wheel: string;

  before(() => {
    mkdirSync(TEST_TMP, { recursive: true });
    dir = mkdtempSync(join(TEST_TMP, 'hearth-envs-'));
    wheel = buildWheel(dir, join(dir, 'wheelhouse'), 'hearthtiny', '1.2.3', 'tiny from the provider venv');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const systemSitePackages of [false, true]) {
    it(`runs VENV/bin/python itself, so the venv's packages import (venv ${systemSitePackages ? 'with' : 'without'} system site-packages)`, async () => {
      const venv = join(dir, `provider-venv-${systemSitePackages ? 'sys' : 'plain'}`);
      const python = makeVenv(venv, wheel, { systemSitePackages });
      const net = await startNet(mkdtempSync(join(dir, 'net-')), { python });
      try {
        // The finding was under the default sandbox: make sure this one is sandboxed.
        assert.ok(net.workerLog.some((l) => l.includes('jobs run sandboxed under bubblewrap')), net.workerLog.join('\n'));
        const script = 'import sys, hearthtiny\nprint("VALUE", hearthtiny.VALUE)\nprint("PREFIX", sys.prefix)';
        const jobId = await submit(net, { 'p.py': script }, { entry: 'p.py' });
        const events = await follow(net, jobId);
        assert.equal(finalStatus(events).status, 'succeeded', logOf(events, 'stderr'));
        const out = logOf(events, 'stdout');
        assert.match(out, /^VALUE tiny from the provider venv$/m);
        assert.match(out, new RegExp(`^PREFIX ${venv}$`, 'm'));
      } finally {
        await stopNet(net);
      }
    });
  }
});
