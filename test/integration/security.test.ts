// One account never sees another's work, and bad input gets a clear error and changes nothing.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import WebSocket from 'ws';
import { BrokerClient, BrokerError } from '../../src/client/api';
import { uploadWorkspace } from '../../src/client/workspace';
import { PROTOCOL_VERSION } from '../../src/shared/protocol';
import { hearth, Network, REPO, workspace } from './helpers';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function rejects(p: Promise<unknown>, status: number, code?: string): Promise<BrokerError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof BrokerError, String(err));
    assert.equal(err.status, status, err.message);
    if (code) assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected HTTP ${status}`);
}

describe('accounts and bad input (integration)', function () {
  this.timeout(120_000);
  let net: Network;
  let alice: BrokerClient;
  let bob: BrokerClient;
  let aliceJob: string;
  let aliceBlob: string;

  before(async () => {
    // Two devices (the recorded-nvidia-smi stand-in: this machine has no GPU) so two accounts can lease.
    net = await Network.start(['--kill-grace', '2', '--nvidia-smi', join(REPO, 'test/fixtures/nvidia-smi/fake-nvidia-smi')]);
    const admin = net.client();
    alice = net.client((await admin.createAccount('alice')).token);
    bob = net.client((await admin.createAccount('bob')).token);
    const ws = workspace({ 'a.py': 'import os\nos.makedirs("outputs", exist_ok=True)\nopen("outputs/secret.pt","wb").write(b"alice weights")\nprint("alice secret")\n' });
    const r = await hearth(['run', join(ws, 'a.py')], net.env(alice.token!));
    assert.equal(r.code, 0, r.stderr);
    aliceJob = r.stderr.split('\n')[0]!;
    aliceBlob = (await alice.artifacts(aliceJob))[0]!.sha256;
  });
  after(async () => {
    await net?.stop();
  });

  it('a second account cannot see the first one\'s jobs, logs, artifacts or blobs', async () => {
    assert.deepEqual(await bob.jobs(), []);
    await rejects(bob.job(aliceJob), 404);
    await rejects(bob.cancelJob(aliceJob), 404);
    await rejects(bob.artifacts(aliceJob), 404);
    await rejects((async () => { for await (const _ of bob.events(aliceJob)) { /* nothing */ } })(), 404);
    await rejects(bob.getBlob(aliceBlob), 404);
    assert.equal(await bob.hasBlob(aliceBlob), false);
    assert.deepEqual(await bob.missingBlobs([aliceBlob]), [aliceBlob]);
    const logs = await hearth(['logs', aliceJob], net.env(bob.token!));
    assert.notEqual(logs.code, 0);
    assert.doesNotMatch(logs.stdout + logs.stderr, /alice secret/);
    // Bob cannot submit a job that names Alice's blob without uploading the bytes himself.
    const lease = await bob.createLease({});
    await rejects(bob.submitJob({ leaseId: lease.id, entry: 'a.py', args: [], env: {}, outputs: [], logdir: 'runs', manifest: { files: [{ path: 'a.py', sha256: aliceBlob, size: 13, executable: false }] } }), 400, 'missing_blobs');
    // (The lease Alice's run took for itself ended with the run: she takes one to hold.)
    const aliceLease = await alice.createLease({});
    await rejects(bob.lease(aliceLease.id), 404);
    await rejects(bob.releaseLease(aliceLease.id), 404);
    assert.equal((await alice.lease(aliceLease.id)).status, 'active');
    await bob.releaseLease(lease.id);
    await alice.releaseLease(aliceLease.id);
    await rejects(net.client('hth_not_a_token').jobs(), 401);
  });

  it('a blob whose hash lies is refused and not stored', async () => {
    const data = randomBytes(1000);
    const wrong = sha(Buffer.from('something else'));
    await rejects(alice.putBlob(wrong, data, data.length), 400, 'hash_mismatch');
    assert.equal(await alice.hasBlob(wrong), false);
    await alice.putBlob(sha(data), data, data.length);
    assert.equal(await alice.hasBlob(sha(data)), true);
  });

  it('paths that escape the job folder are refused with the offending path named', async () => {
    const ws = workspace({ 'ok.py': 'print(1)\n' });
    const m = await uploadWorkspace(alice, ws);
    const lease = (await alice.leases()).find((l) => l.status === 'active') ?? (await alice.createLease({}));
    for (const bad of ['../escape.py', '/etc/passwd', 'a/../../b', 'a//b', './x']) {
      const err = await rejects(
        alice.submitJob({ leaseId: lease.id, entry: 'ok.py', args: [], env: {}, outputs: [], logdir: 'runs', manifest: { files: [{ ...m.files[0]!, path: bad }] } }),
        400,
        'invalid_request',
      );
      assert.equal(err.issues?.[0]?.path, 'manifest.files.0.path');
    }
    await rejects(alice.submitJob({ leaseId: lease.id, entry: '../ok.py', args: [], env: {}, outputs: [], logdir: 'runs', manifest: { files: m.files } }), 400);
    await rejects(alice.submitJob({ leaseId: lease.id, entry: 'ok.py', args: [], env: { 'BAD-NAME': 'x' }, outputs: [], logdir: 'runs', manifest: { files: m.files } }), 400);
    const jobsBefore = (await alice.jobs()).length;
    assert.equal((await alice.jobs()).length, jobsBefore, 'nothing was created');
  });

  it('malformed requests get a 400 that says what is wrong', async () => {
    const res = await fetch(`${net.broker.url}/v1/leases`, {
      method: 'POST',
      headers: { authorization: `Bearer ${net.broker.adminToken}`, 'content-type': 'application/json' },
      body: '{"count": "two"',
    });
    assert.equal(res.status, 400);
    const res2 = await fetch(`${net.broker.url}/v1/leases`, {
      method: 'POST',
      headers: { authorization: `Bearer ${net.broker.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ count: 'two', surprise: 1 }),
    });
    assert.equal(res2.status, 400);
    const body = (await res2.json()) as { message: string; issues: { path: string }[] };
    assert.ok(body.issues.some((i) => i.path === 'count'), body.message);
    const res3 = await fetch(`${net.broker.url}/v1/jobs/job_xxxxxxxxxxxxxxxx/events?from=-3`, { headers: { authorization: `Bearer ${net.broker.adminToken}` } });
    assert.equal(res3.status, 400);
  });

  it('a worker socket that sends garbage gets errors, and one that lies about paths changes nothing', async () => {
    const url = net.broker.url.replace('http', 'ws') + '/v1/worker/ws';
    // no token: no socket
    const denied = new WebSocket(url);
    const status = await new Promise<number>((res) => denied.on('unexpected-response', (_req, r) => res(r.statusCode ?? 0)));
    assert.equal(status, 401);

    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${net.workerToken}` } });
    const messages: { type: string; message?: string }[] = [];
    ws.on('message', (m) => messages.push(JSON.parse(m.toString())));
    await new Promise((res) => ws.on('open', res));
    ws.send(JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, name: 'liar', hostname: 'x', version: '0', gpus: [{ index: 0, uuid: 'u', name: 'Fake GPU', memoryTotalMiB: 1 }], pricePerHour: 0, jobs: [] }));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(messages[0]?.type, 'welcome');
    ws.send('this is not json');
    ws.send(JSON.stringify({ type: 'event', jobId: aliceJob, wseq: 1, body: { type: 'artifact', artifact: { path: '../../etc/passwd', sha256: aliceBlob, size: 13 } } }));
    ws.send(JSON.stringify({ type: 'event', jobId: aliceJob, wseq: 99, body: { type: 'log', stream: 'stdout', data: 'injected' } }));
    await new Promise((r) => setTimeout(r, 500));
    const errors = messages.filter((m) => m.type === 'error').map((m) => m.message);
    assert.equal(errors.length, 3, JSON.stringify(messages));
    assert.match(errors[0]!, /not JSON/);
    assert.match(errors[1]!, /path/);
    assert.match(errors[2]!, /not assigned to this worker/);
    ws.close();
    // Alice's job is untouched.
    const events = [];
    for await (const e of alice.events(aliceJob)) events.push(e);
    assert.ok(!events.some((e) => e.body.type === 'log' && e.body.data === 'injected'));
    assert.deepEqual((await alice.artifacts(aliceJob)).map((a) => a.path), ['outputs/secret.pt']);
  });
});
