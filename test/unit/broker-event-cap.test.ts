// A job's output counts against the broker's cap whatever its form: log lines, scalars, telemetry,
// and a notebook's or kernel's outputs (kernel events).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBroker } from '../../src/broker/app';
import { backendOptions } from '../backend';

describe('broker: the per-job output cap', () => {
  it('counts kernel outputs, stores one notice at the cap, and stops the job', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hearth-cap-'));
    const b = await buildBroker({ dataDir: dir, maxJobEventBytes: 10_000, ...(await backendOptions()) });
    try {
      const cancels: string[] = [];
      b.broker.link = { isOnline: async () => true, dispatch: async () => undefined, cancel: async (_w, jobId) => void cancels.push(jobId), request: async () => undefined };
      const admin = (await b.broker.authenticate(b.adminToken))!;
      const workerId = await b.broker.registerWorker(admin.accountId, { name: 'w', hostname: 'h', version: '1', gpus: [{ index: 0, uuid: 'u', name: 'GPU', memoryTotalMiB: 1, isGpu: true }], pricePerHour: 1 });
      const lease = await b.broker.createLease(admin, { count: 1, hours: 1, workerId });
      const k = await b.broker.startKernel(admin, { leaseId: lease.id });
      // The worker took it and it runs (a session not yet taken would simply end on the stop).
      await b.broker.store.jobs.accept(k.id, workerId, 1);
      await b.broker.events.append(k.id, { type: 'status', status: 'running' }, 1);
      for (let i = 2; i <= 100; i++) {
        await b.broker.events.append(k.id, { type: 'kernel', requestId: 'req_aaaaaaaa', msgType: 'stream', content: { name: 'stdout', text: 'x'.repeat(1000) } }, i);
      }
      const row = (await b.broker.events.job(k.id))!;
      assert.ok(row.last_seq < 20, `${row.last_seq} events stored`);
      assert.equal(row.last_wseq, 100, 'the worker\'s sequence goes on: nothing is refused, the rest is dropped');
      const notices = (await b.broker.events.read(k.id, 0, 1000)).filter((e) => e.body.type === 'notice');
      assert.equal(notices.length, 1);
      assert.deepEqual(cancels, [k.id]);
    } finally {
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
