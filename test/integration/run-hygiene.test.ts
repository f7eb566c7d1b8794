// What a renter meets around a run: only files a run made or changed come back (a run that
// crashed before training must not hand back the model.pt it was uploaded with as if it were new
// weights), a lease `hearth run` takes for itself ends with the run, and a file that is not
// Python is refused before anything is uploaded or leased.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { BrokerClient } from '../../src/client/api';
import { startBroker } from '../../src/broker/server';
import { CLI, hearth, Network, stopProcess, waitForOutput, workspace } from './helpers';
import { backendFor } from '../backend';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('run hygiene (integration)', function () {
  this.timeout(120_000);
  let net: Network;
  before(async () => (net = await Network.start()));
  after(async () => net?.stop());

  it('a run that crashed returns nothing and says the uploaded model.pt was unchanged', async () => {
    const ws = workspace({ 'model.pt': 'old weights', 'train.py': 'import torch_that_is_missing\n' });
    const r = await hearth(['run', join(ws, 'train.py')], net.env());
    assert.equal(r.code, 1);
    const job = r.stderr.split('\n')[0]!;
    assert.deepEqual(await net.client().artifacts(job), []);
    assert.match(r.stderr, /produced no new or changed files.*unchanged from the upload, so not returned: model\.pt/);
  });

  it('a run that rewrote model.pt returns the new one', async () => {
    const ws = workspace({ 'model.pt': 'old weights', 'train.py': 'open("model.pt", "w").write("new weights")\n' });
    const r = await hearth(['run', join(ws, 'train.py')], net.env());
    assert.equal(r.code, 0, r.stderr);
    const job = r.stderr.split('\n')[0]!;
    assert.deepEqual((await net.client().artifacts(job)).map((a) => [a.path, a.sha256]), [['model.pt', sha('new weights')]]);
  });

  it('a lease hearth run takes for itself is released when the run ends, and the run says which and at what price', async () => {
    const client = net.client();
    for (const l of await client.leases()) if (l.status === 'active') await client.releaseLease(l.id);
    const ws = workspace({ 'quick.py': 'print("quick")\n' });
    const r = await hearth(['run', join(ws, 'quick.py')], net.env());
    assert.equal(r.code, 0, r.stderr);
    const m = /leased (lease_\w+) for this run \(1× .* at [\d.]+ credits\/h per device\); the broker releases it when the run ends/.exec(r.stderr);
    assert.ok(m, r.stderr);
    assert.equal((await client.lease(m[1]!)).status, 'released');
    assert.equal(r.stderr.split('\n')[0], (await client.jobs())[0]!.id, 'the job id stays the first line');
  });

  it('refuses a file that is not Python, before leasing or uploading anything', async () => {
    const ws = workspace({ 'notes.txt': 'print("not python")\n' });
    const before = (await net.client().leases()).length;
    const r = await hearth(['run', join(ws, 'notes.txt')], net.env());
    assert.equal(r.code, 64);
    assert.match(r.stderr, /runs Python scripts \(\.py\) and notebooks \(\.ipynb\); notes\.txt is neither/);
    assert.equal((await net.client().leases()).length, before);
  });
});

describe('a worker started under umask 077 (integration)', function () {
  this.timeout(120_000);
  it('still runs jobs (their folder is made enterable for the sandbox)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hearth-umask-'));
    const broker = await startBroker({ ...(await backendFor(join(dir, 'broker'))), dataDir: join(dir, 'broker'), port: 0, heartbeatMs: 500 });
    const admin = new BrokerClient({ url: broker.url, token: broker.adminToken! });
    const { token } = await admin.createToken('worker', 'w');
    const worker = spawn('/bin/sh', ['-c', 'umask 077; exec "$@"', 'sh', process.execPath, CLI, '--broker', broker.url, '--token', token, 'worker', '--work-dir', join(dir, 'worker'), '--nvidia-smi', join(dir, 'none')], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HEARTH_TOKEN: '', HEARTH_BROKER_URL: '' },
    });
    try {
      await waitForOutput(worker, /connected to the broker/);
      const ws = workspace({ 'u.py': 'print("ran under umask 077")\n' });
      const r = await hearth(['run', join(ws, 'u.py')], { HEARTH_BROKER_URL: broker.url, HEARTH_TOKEN: broker.adminToken!, HEARTH_DATA_DIR: join(dir, 'cli') });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /ran under umask 077/);
    } finally {
      await stopProcess(worker);
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
