// The broker's own rules, on a real database in a temp folder, with the worker link recorded.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBroker, type BrokerApp } from '../../src/broker/app';
import type { JobRow } from '../../src/broker/event-log';
import { backendOptions } from '../backend';

describe('broker: stopping jobs', () => {
  let dir: string;
  let b: BrokerApp;
  const sent: { kind: string; jobId: string }[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hearth-broker-'));
    b = await buildBroker({ dataDir: dir, ...(await backendOptions()) });
    sent.length = 0;
    b.broker.link = {
      isOnline: async () => true,
      dispatch: async (j: JobRow) => void sent.push({ kind: 'dispatch', jobId: j.id }),
      cancel: async (_w: string, jobId: string) => void sent.push({ kind: 'cancel', jobId }),
      request: async () => undefined,
    };
  });
  afterEach(async () => {
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function submit() {
    const admin = (await b.broker.authenticate(b.adminToken))!;
    const workerId = await b.broker.registerWorker(admin.accountId, { name: 'w', hostname: 'h', version: '1', gpus: [{ index: 0, uuid: 'u', name: 'GPU', memoryTotalMiB: 1, isGpu: true }], pricePerHour: 1 });
    const sha = 'a'.repeat(64);
    await b.broker.recordBlob(sha, 1, admin.accountId);
    const lease = await b.broker.createLease(admin, { count: 1, hours: 1, workerId });
    return { admin, workerId, job: await b.broker.submitJob(admin, { leaseId: lease.id, entry: 'x.py', args: [], env: {}, outputs: [], logdir: 'runs', manifest: { files: [{ path: 'x.py', sha256: sha, size: 1, executable: false }] } }) };
  }

  it('a job cancelled before the worker accepted it ends at once, and the worker is told anyway', async () => {
    const { admin, job } = await submit();
    assert.deepEqual(sent, [{ kind: 'dispatch', jobId: job.id }]);
    const after = await b.broker.cancelJob(admin, job.id);
    assert.equal(after.status, 'cancelled');
    assert.deepEqual(sent[1], { kind: 'cancel', jobId: job.id }, 'the job may already be on its way to the worker');
  });

  it('a running job is only asked to stop; the worker reports the end', async () => {
    const { admin, workerId, job } = await submit();
    await b.broker.store.jobs.accept(job.id, workerId, 1);
    await b.broker.events.append(job.id, { type: 'status', status: 'running' }, 1);
    assert.equal((await b.broker.cancelJob(admin, job.id)).status, 'running');
    assert.deepEqual(sent[1], { kind: 'cancel', jobId: job.id });
    await b.broker.events.append(job.id, { type: 'status', status: 'cancelled', reason: 'cancelled by user' }, 2);
    assert.equal(b.broker.toJob(await b.broker.jobRow(admin, job.id)).status, 'cancelled');
    // a repeat of the same event (a resend after a reconnect) changes nothing
    assert.equal((await b.broker.events.append(job.id, { type: 'status', status: 'failed' }, 2)).kind, 'repeat');
    // nothing more goes into the log of an ended job, and the job stays cancelled
    const before = b.broker.toJob(await b.broker.jobRow(admin, job.id)).lastSeq;
    assert.equal((await b.broker.events.append(job.id, { type: 'status', status: 'failed' }, 3)).kind, 'ended');
    assert.equal((await b.broker.events.append(job.id, { type: 'log', stream: 'stdout', data: 'late\n' }, 4)).kind, 'ended');
    const j = b.broker.toJob(await b.broker.jobRow(admin, job.id));
    assert.equal(j.status, 'cancelled');
    assert.equal(j.lastSeq, before);
  });
});
