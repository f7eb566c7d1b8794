// A GPU host as the worker sees one, with the recorded nvidia-smi output standing in for the
// hardware this machine lacks (test/fixtures/nvidia-smi/fake-nvidia-smi): the offer lists both
// H100s, a job sees only its lease's GPUs, and its telemetry covers only those.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { BrokerClient } from '../../src/client/api';
import { uploadWorkspace } from '../../src/client/workspace';
import { startBroker } from '../../src/broker/server';
import type { JobEvent } from '../../src/shared/protocol';
import { startWorker } from '../../src/worker/main';
import { backendFor } from '../backend';

const FAKE_SMI = join(__dirname, '..', 'fixtures', 'nvidia-smi', 'fake-nvidia-smi');

describe('worker on a (recorded) 2× H100 host', function () {
  this.timeout(60_000);

  it('offers both GPUs and gives each job only the GPUs of its lease', async () => {
    const dir = mkdtempSync(join(os.tmpdir(), 'hearth-worker-gpu-'));
    const broker = await startBroker({ ...(await backendFor(join(dir, 'broker'))), dataDir: join(dir, 'broker'), port: 0, heartbeatMs: 300 });
    const client = new BrokerClient({ url: broker.url, token: broker.adminToken! });
    const { token } = await client.createToken('worker', 'gpu');
    const worker = startWorker({
      brokerUrl: broker.url,
      token,
      workDir: join(dir, 'work'),
      name: 'h100-box',
      nvidiaSmi: FAKE_SMI,
      pricePerHour: 2.5,
      telemetryMs: 100,
      log: () => undefined,
    });
    try {
      const workerId = await worker.workerId;
      const offer = (await client.offers()).find((o) => o.workerId === workerId);
      assert.ok(offer);
      assert.equal(offer.gpuModel, 'NVIDIA H100 80GB HBM3');
      assert.equal(offer.isGpu, true);
      assert.equal(offer.total, 2);
      assert.equal(offer.vramMiB, 81559);
      assert.equal(offer.pricePerHour, 2.5);
      // What the worker has: the driver as (recorded) nvidia-smi says, the free disk of its work dir.
      assert.equal(offer.stack?.driver, '550.54.15');
      assert.ok((offer.stack?.diskFreeBytes ?? 0) > 0);

      const ws = join(dir, 'ws');
      mkdirSync(ws);
      writeFileSync(
        join(ws, 'env.py'),
        'import os, time\nprint(os.environ["CUDA_VISIBLE_DEVICES"], os.environ["CUDA_DEVICE_ORDER"])\ntime.sleep(0.6)\n',
      );
      const manifest = await uploadWorkspace(client, ws);
      // Two one-GPU leases: each must get a different device, and each job sees only its own.
      const leases = [await client.createLease({ count: 1 }), await client.createLease({ count: 1 })];
      assert.deepEqual(leases.flatMap((l) => l.gpuIndices).sort(), [0, 1]);
      for (const lease of leases) {
        const job = await client.submitJob({ leaseId: lease.id, entry: 'env.py', args: [], env: {}, outputs: [], logdir: 'runs', manifest });
        const events: JobEvent[] = [];
        for await (const e of client.events(job.id, { follow: true })) events.push(e);
        const out = events.map((e) => (e.body.type === 'log' ? e.body.data : '')).join('');
        assert.equal(out, `${lease.gpuIndices.join(',')} PCI_BUS_ID\n`);
        const tele = events.flatMap((e) => (e.body.type === 'telemetry' ? [e.body.gpus] : []));
        assert.ok(tele.length > 0, 'telemetry was sent while the job ran');
        for (const gpus of tele) assert.deepEqual(gpus.map((g) => g.index), lease.gpuIndices);
        // Values are the recording's: GPU 1 is busy at 97 % drawing 612.45 W, GPU 0 idles.
        const g = tele[0]![0]!;
        assert.equal(g.powerW, g.index === 1 ? 612.45 : 69.88);
        assert.equal(g.memoryTotalMiB, 81559);
      }
    } finally {
      await worker.stop();
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
