// The broker goes away in the middle of a job and comes back on the same data dir: the worker
// keeps what the broker had not acknowledged, reconnects under the same id, resends, and the
// job's log ends up complete, in order, once, with its artifact.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { BrokerClient } from '../../src/client/api';
import { uploadWorkspace } from '../../src/client/workspace';
import { startBroker, type RunningBroker } from '../../src/broker/server';
import type { JobEvent } from '../../src/shared/protocol';
import { startWorker } from '../../src/worker/main';
import { backendFor } from '../backend';

describe('worker across a broker restart', function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(os.tmpdir(), 'hearth-worker-restart-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('resends unacknowledged events and uploads the artifact once the broker is back', async () => {
    const dataDir = join(dir, 'broker');
    let broker: RunningBroker = await startBroker({ ...(await backendFor(dataDir)), dataDir, port: 0, heartbeatMs: 300 });
    const port = broker.port;
    const admin = broker.adminToken!;
    const client = new BrokerClient({ url: broker.url, token: admin });
    const { token } = await client.createToken('worker', 'w');
    const log: string[] = [];
    const worker = startWorker({
      brokerUrl: broker.url,
      token,
      workDir: join(dir, 'worker'),
      nvidiaSmi: join(dir, 'none'),
      telemetryMs: 200,
      log: (level, msg) => log.push(`${level} ${msg}`),
    });
    try {
      const workerId = await worker.workerId;
      const ws = join(dir, 'ws');
      mkdirSync(ws);
      writeFileSync(
        join(ws, 'job.py'),
        [
          'import os, time',
          'for i in range(1000): print(f"before {i}")',
          'while not os.path.exists("go"): time.sleep(0.02)',
          'for i in range(3000): print(f"during {i} " + "y" * 100)',
          'os.makedirs("out", exist_ok=True)',
          'open("out/w.bin", "wb").write(b"weights" * 5000)',
        ].join('\n'),
      );
      const manifest = await uploadWorkspace(client, ws);
      const lease = await client.createLease({ count: 1 });
      const job = await client.submitJob({ leaseId: lease.id, entry: 'job.py', args: [], env: {}, outputs: ['out/**'], logdir: 'runs', manifest });

      // Wait until the broker has the first part, then take it away.
      for (;;) {
        const events: JobEvent[] = [];
        for await (const e of client.events(job.id, {})) events.push(e);
        if (events.some((e) => e.body.type === 'log' && e.body.data.includes('before 999'))) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await broker.close();
      // While it is away the job writes the rest of its log and its output, and ends.
      writeFileSync(join(dir, 'worker', 'jobs', job.id, 'go'), '');
      await new Promise((r) => setTimeout(r, 1500));
      broker = await startBroker({ ...(await backendFor(dataDir)), dataDir, port, heartbeatMs: 300 });

      const events: JobEvent[] = [];
      for await (const e of client.events(job.id, { follow: true })) events.push(e);
      const out = events.map((e) => (e.body.type === 'log' && e.body.stream === 'stdout' ? e.body.data : '')).join('');
      const want =
        Array.from({ length: 1000 }, (_, i) => `before ${i}\n`).join('') + Array.from({ length: 3000 }, (_, i) => `during ${i} ${'y'.repeat(100)}\n`).join('');
      assert.equal(out, want);
      // seq numbers are gap-free and each event came once.
      events.forEach((e, i) => assert.equal(e.seq, i + 1));
      const last = events[events.length - 1]!.body;
      assert.equal(last.type, 'status');
      assert.equal(last.type === 'status' && last.status, 'succeeded');
      const arts = events.flatMap((e) => (e.body.type === 'artifact' ? [e.body.artifact] : []));
      assert.deepEqual(arts.map((a) => a.path), ['out/w.bin']);
      const blob = Buffer.from(await (await client.getBlob(arts[0]!.sha256)).arrayBuffer());
      assert.ok(blob.equals(Buffer.from('weights'.repeat(5000))));
      // Same identity after the reconnect: the offer is still this worker's.
      assert.ok((await client.offers()).some((o) => o.workerId === workerId && o.online));
      assert.ok(log.filter((l) => l.includes('connected to the broker')).length >= 2, 'the worker reconnected');
    } finally {
      await worker.stop();
      await broker.close();
    }
  });
});
