// Two broker replicas on one PostgreSQL database, each a real `hearth broker --database` process,
// and a real worker given both URLs. Runs only on PostgreSQL (HEARTH_TEST_DATABASE; scripts/test.sh
// starts a private cluster for it).
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BrokerClient } from '../../src/client/api';
import type { JobEvent } from '../../src/shared/protocol';
import { freshDatabase, TEST_DATABASE } from '../backend';
import { spawnHearth, startWorkerProc, stopProcess, tempDir, waitFor, waitForOutput, type WorkerProc } from './helpers';

interface Replica {
  proc: ChildProcess;
  url: string;
}

async function startReplica(dataDir: string, database: string): Promise<Replica> {
  mkdirSync(dataDir, { recursive: true });
  const proc = spawnHearth(['--data-dir', dataDir, 'broker', '--port', '0'], { HEARTH_DATABASE: database });
  const m = await waitForOutput(proc, /broker listening on (http:\/\/127\.0\.0\.1:\d+)/);
  return { proc, url: m[1]! };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('two broker replicas on one PostgreSQL database (integration)', function () {
  this.timeout(180_000);
  let root: string;
  let a: Replica | undefined;
  let b: Replica | undefined;
  let worker: WorkerProc | undefined;

  before(function () {
    if (!TEST_DATABASE) this.skip();
  });
  afterEach(async () => {
    if (worker) await stopProcess(worker.proc);
    for (const r of [a, b]) if (r) await stopProcess(r.proc);
    rmSync(root, { recursive: true, force: true });
  });

  it('a worker on replica A runs a job submitted to B; killed mid-job, A hands the worker to B and no line is lost', async () => {
    root = tempDir('replicas');
    const database = (await freshDatabase())!;
    // The blob folder is shared, as a volume both replicas mount would be (S3 is the other way);
    // the rows are in PostgreSQL. HEARTH_DATABASE for one, --database for the other: both are the broker's.
    const dataDir = join(root, 'broker');
    a = await startReplica(dataDir, database);
    const adminToken = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    const bp = spawnHearth(['--data-dir', dataDir, 'broker', '--port', '0', '--database', database]);
    b = { proc: bp, url: (await waitForOutput(bp, /broker listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]! };

    const onA = new BrokerClient({ url: a.url, token: adminToken });
    const onB = new BrokerClient({ url: b.url, token: adminToken });
    const { token: workerToken } = await onA.createToken('worker', 'replicas');
    worker = await startWorkerProc(`${a.url},${b.url}`, workerToken, join(root, 'worker'), ['--nvidia-smi', join(root, 'none'), '--kill-grace', '2']);

    // The renter talks to B only; the worker's socket is on A.
    const offers = await waitFor('the worker to be offered on B', async () => ((await onB.offers()).length ? await onB.offers() : undefined));
    const lease = await onB.createLease({ workerId: offers[0]!.workerId, count: 1, hours: 1 });
    const N = 80;
    const script = Buffer.from(`import time\nfor i in range(${N}):\n    print(f"line {i}", flush=True)\n    time.sleep(0.1)\n`);
    await onB.putBlob(sha(script), script, script.length);
    const job = await onB.submitJob({
      leaseId: lease.id,
      entry: 'lines.py',
      args: [],
      env: {},
      outputs: [],
      logdir: 'runs',
      manifest: { files: [{ path: 'lines.py', sha256: sha(script), size: script.length, executable: false }] },
    });

    const seen: JobEvent[] = [];
    let text = '';
    const following = (async () => {
      for await (const e of onB.events(job.id, { follow: true })) {
        seen.push(e);
        if (e.body.type === 'log') text += e.body.data;
      }
    })();

    await waitFor('the job to print on B', () => (/line 10\n/.test(text) ? true : undefined), 60_000).catch(async (err: Error) => {
      throw new Error(`${err.message}: job ${JSON.stringify(await onB.job(job.id))}, ${seen.length} events; worker:\n${worker!.log().slice(-3000)}`);
    });
    a.proc.kill('SIGKILL');
    await stopProcess(a.proc);
    a = undefined;
    await waitForOutput(worker.proc, /connected to the broker[\s\S]*connected to the broker/, 30_000);

    await following;
    const end = await onB.job(job.id);
    assert.equal(end.status, 'succeeded', worker.log().slice(-2000));
    const lines = text.split('\n').filter(Boolean);
    assert.deepEqual(lines, Array.from({ length: N }, (_, i) => `line ${i}`), 'every line once, in order');
    // Every event once, in order, whichever replica stored it.
    assert.deepEqual(
      seen.map((e) => e.seq),
      Array.from({ length: seen.length }, (_, i) => i + 1),
    );
    assert.equal(seen.length, end.lastSeq);
  });
});
