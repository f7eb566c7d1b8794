// Secrets end to end: a real broker and worker, real python3. A secret set with `hearth secret
// set` reaches its owner's job as an environment variable, is masked in the stored log (read back
// through `hearth logs` and straight from the database), and reaches no other account's job and
// no job spec; a broker started with another key refuses to start, saying why.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BrokerClient } from '../../src/client/api';
import { backendFlagsFor, selectRows } from '../backend';
import { CLI, hearth, Network, REPO, spawnHearth, stopProcess, tempDir, waitForOutput, workspace, type CliResult } from './helpers';

/** `hearth ARGS` with `input` on its stdin (a pipe, not a terminal). */
async function hearthWithInput(args: string[], env: Record<string, string>, input: string): Promise<CliResult> {
  const p = spawn(process.execPath, [CLI, ...args], { cwd: REPO, env: { ...process.env, HEARTH_BROKER_URL: '', HEARTH_TOKEN: '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  p.stdin.end(input);
  const [code, signal] = (await once(p, 'close')) as [number | null, NodeJS.Signals | null];
  return { code, signal, stdout, stderr };
}

describe('secrets (integration)', function () {
  this.timeout(180_000);
  let net: Network;
  let alice: BrokerClient;
  let bob: BrokerClient;
  // Long and random: nothing else in a log looks like it.
  const value = `sk-${randomBytes(24).toString('hex')}`;

  before(async () => {
    net = await Network.start(['--kill-grace', '2', '--nvidia-smi', join(REPO, 'test/fixtures/nvidia-smi/fake-nvidia-smi')]);
    const admin = net.client();
    alice = net.client((await admin.createAccount('alice')).token);
    bob = net.client((await admin.createAccount('bob')).token);
  });
  after(async () => {
    await net?.stop();
  });

  it('sets a secret from stdin, never from an argument, and lists it without its value', async () => {
    const refused = await hearth(['secret', 'set', 'API_KEY', value], net.env(alice.token!));
    assert.ok(refused.code !== 0 && refused.code !== null, refused.stderr);
    assert.match(refused.stderr, /never an argument/);
    assert.deepEqual(await alice.secrets(), []);

    const bad = await hearthWithInput(['secret', 'set', '1BAD'], net.env(alice.token!), 'x\n');
    assert.ok(bad.code !== 0 && bad.code !== null);
    assert.match(bad.stderr, /environment variable name/);

    const set = await hearthWithInput(['secret', 'set', 'API_KEY'], net.env(alice.token!), value + '\n');
    assert.equal(set.code, 0, set.stderr);
    const list = await hearth(['secret', 'list', '--json'], net.env(alice.token!));
    assert.equal(list.code, 0, list.stderr);
    const listed = JSON.parse(list.stdout) as { name: string; updatedAt: number }[];
    assert.deepEqual(listed.map((s) => s.name), ['API_KEY']);
    assert.doesNotMatch(list.stdout + list.stderr, new RegExp(value));
    const table = await hearth(['secret', 'list'], net.env(alice.token!));
    assert.match(table.stdout, /^API_KEY\s/m);
    assert.doesNotMatch(table.stdout, new RegExp(value));
    // Another account sees none of them.
    assert.deepEqual(await bob.secrets(), []);
  });

  it('gives the owner\'s job the value, masks it in the stored log (also split across two chunks), and shows it in no job spec', async () => {
    const ws = workspace({
      'use.py': [
        'import os, sys, time',
        'v = os.environ["API_KEY"]',
        'print("whole:", v, flush=True)',
        'print("err:", v, file=sys.stderr, flush=True)',
        // The worker sends a partial line after 50 ms: the value arrives in two log events.
        'sys.stdout.write("split: " + v[:12]); sys.stdout.flush(); time.sleep(0.6)',
        'sys.stdout.write(v[12:] + " end\\n"); sys.stdout.flush()',
        'print("length", len(v))',
      ].join('\n'),
    });
    const r = await hearth(['run', join(ws, 'use.py')], net.env(alice.token!));
    assert.equal(r.code, 0, r.stderr);
    const jobId = r.stderr.split('\n')[0]!;
    assert.match(r.stdout, /^whole: \*\*\*$/m);
    assert.match(r.stdout, /^split: \*\*\* end$/m);
    assert.match(r.stdout, new RegExp(`^length ${value.length}$`, 'm'), 'the job got the whole value');
    assert.match(r.stderr, /^err: \*\*\*$/m);

    const logs = await hearth(['logs', jobId], net.env(alice.token!));
    assert.equal(logs.code, 0, logs.stderr);
    for (const part of [value, value.slice(0, 12), value.slice(12)]) assert.ok(!(logs.stdout + logs.stderr).includes(part), `hearth logs shows ${part}`);
    assert.match(logs.stdout, /^split: \*\*\* end$/m);

    // What the broker stored, read from its database: no part of the value anywhere.
    {
      const rows = await selectRows<{ body: string }>(net.dataDir, 'SELECT body FROM events WHERE job_id = ?', jobId);
      assert.ok(rows.some((x) => x.body.includes('***')));
      for (const x of rows) for (const part of [value, value.slice(0, 12), value.slice(12)]) assert.ok(!x.body.includes(part), `stored event holds ${part}: ${x.body}`);
      const [spec] = (await selectRows<{ spec: string }>(net.dataDir, 'SELECT spec FROM job_specs WHERE job_id = ?', jobId)) as [{ spec: string }];
      assert.ok(!spec.spec.includes(value) && !spec.spec.includes('API_KEY'), 'the spec holds no secret');
      // At rest the value is sealed.
      const sealed = await selectRows<{ value: Buffer }>(net.dataDir, 'SELECT value FROM secrets');
      assert.equal(sealed.length, 1);
      assert.ok(!sealed[0]!.value.includes(Buffer.from(value)) && !sealed[0]!.value.includes(Buffer.from(value.slice(3, 20))));
    }
    const raw = await fetch(`${net.broker.url}/v1/jobs/${jobId}`, { headers: { authorization: `Bearer ${alice.token}` } });
    const text = await raw.text();
    assert.equal(raw.status, 200);
    assert.ok(!text.includes(value) && !text.includes('API_KEY'), text);
  });

  it('gives the owner\'s kernel the value too, masked in what its cells print', async () => {
    const start = await hearth(['kernel', 'start'], net.env(alice.token!));
    assert.equal(start.code, 0, start.stderr);
    const session = /\b(job_[0-9A-Za-z]+)\b/.exec(start.stdout + start.stderr)![1]!;
    try {
      const r = await hearth(['kernel', 'exec', session, 'import os\nv = os.environ["API_KEY"]\nprint("cell:", v, len(v))'], net.env(alice.token!));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), `cell: *** ${value.length}`);
      const stored = [];
      for await (const e of alice.events(session)) stored.push(JSON.stringify(e.body));
      assert.ok(stored.some((b) => b.includes('cell: ***')));
      assert.ok(!stored.some((b) => b.includes(value)));
    } finally {
      await hearth(['kernel', 'stop', session], net.env(alice.token!));
    }
  });

  it('masks it wherever the broker keeps the job\'s text: scalar run and tag names, artifact paths, a value split between stdout and stderr, an executed notebook (issue 14, finding 11)', async () => {
    const parts = [value, value.slice(0, 10), value.slice(10)];
    const clear = (what: string, text: string) => {
      for (const p of parts) assert.ok(!text.includes(p), `${what} holds ${p}: ${text.slice(0, 2000)}`);
    };
    const ws = workspace({
      'tbwriter.py': readFileSync(join(REPO, 'test/fixtures/py/tbwriter.py')),
      'leak.py': [
        'import os, sys, time',
        'from tbwriter import SummaryWriter',
        'v = os.environ["API_KEY"]',
        'w = SummaryWriter(os.path.join("runs", "run-" + v))',
        'w.add_scalar("loss/" + v, 0.5, 1); w.close()',
        'os.makedirs("outputs", exist_ok=True)',
        'open(os.path.join("outputs", v + ".txt"), "w").write("weights")',
        // The two halves on the two streams: a terminal (and the log) reads them as one.
        'sys.stdout.write("half: " + v[:10]); sys.stdout.flush(); time.sleep(0.4)',
        'sys.stderr.write(v[10:] + " rest\\n"); sys.stderr.flush(); time.sleep(0.4)',
        'print("end", flush=True)',
      ].join('\n'),
    });
    const r = await hearth(['run', join(ws, 'leak.py'), '--outputs', 'outputs/**'], net.env(alice.token!), { cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    const jobId = r.stderr.split('\n')[0]!;
    clear('hearth run', r.stdout + r.stderr);
    assert.match(r.stdout, /^half: \*\*\*/m);
    const logs = await hearth(['logs', jobId], net.env(alice.token!));
    clear('hearth logs', logs.stdout + logs.stderr);

    const scalars = await hearth(['scalars', jobId, '--json'], net.env(alice.token!));
    assert.equal(scalars.code, 0, scalars.stderr);
    clear('hearth scalars --json', scalars.stdout);
    assert.deepEqual(JSON.parse(scalars.stdout), { 'run-***': { 'loss/***': [[1, 0.5]] } });

    const dest = join(ws, 'back');
    const pulled = await hearth(['pull', jobId, '--dest', dest, '--json'], net.env(alice.token!));
    assert.equal(pulled.code, 0, pulled.stderr);
    clear('hearth pull', pulled.stdout + pulled.stderr);
    assert.equal(readFileSync(join(dest, 'outputs', '***.txt'), 'utf8'), 'weights');
    clear('the artifacts', JSON.stringify(await alice.artifacts(jobId)));
    for (const row of await selectRows<{ body: string }>(net.dataDir, 'SELECT body FROM events WHERE job_id = ?', jobId)) clear('a stored event', row.body);
    for (const row of await selectRows<{ path: string }>(net.dataDir, 'SELECT path FROM artifacts WHERE job_id = ?', jobId)) clear('a stored artifact', row.path);

    // A notebook run: its cells' outputs are masked in the log, and in the notebook it hands back.
    const cell = (source: string) => ({ cell_type: 'code', metadata: {}, execution_count: null, outputs: [], source: [source] });
    const nbws = workspace({
      'nb.ipynb': JSON.stringify({ nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [cell('import os\nv = os.environ["API_KEY"]\nprint("printed", v)'), cell('v'), cell('{"key": v}')] }),
    });
    const nbRun = await hearth(['run', join(nbws, 'nb.ipynb')], net.env(alice.token!), { cwd: nbws });
    assert.equal(nbRun.code, 0, nbRun.stderr);
    const nbJob = nbRun.stderr.split('\n')[0]!;
    clear('the notebook run', nbRun.stdout + nbRun.stderr);
    const nbBack = join(nbws, 'back');
    const nbPulled = await hearth(['pull', nbJob, '--dest', nbBack], net.env(alice.token!));
    assert.equal(nbPulled.code, 0, nbPulled.stderr);
    const executed = readFileSync(join(nbBack, 'nb.ipynb'), 'utf8');
    clear('the executed notebook', executed);
    const nb = JSON.parse(executed) as { cells: Array<{ outputs: Array<{ text?: string[]; data?: Record<string, string[]> }> }> };
    assert.deepEqual(nb.cells[0]!.outputs[0]!.text, ['printed ***\n']);
    assert.deepEqual(nb.cells[1]!.outputs[0]!.data!['text/plain'], ["'***'"]);
    assert.deepEqual(nb.cells[2]!.outputs[0]!.data!['text/plain'], ["{'key': '***'}"]);
  });

  it('gives another account\'s job nothing of it', async () => {
    const ws = workspace({ 'peek.py': 'import os\nprint("env", sorted(os.environ))\nprint("API_KEY" in os.environ)\nprint(any("' + value.slice(3, 19) + '" in v for v in os.environ.values()))\n' });
    const r = await hearth(['run', join(ws, 'peek.py')], net.env(bob.token!));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n').slice(1), ['False', 'False']);
    assert.doesNotMatch(r.stdout, /API_KEY/);
  });

  it('removes a secret: later jobs no longer get it', async () => {
    const rm = await hearth(['secret', 'rm', 'API_KEY'], net.env(alice.token!));
    assert.equal(rm.code, 0, rm.stderr);
    assert.deepEqual(await alice.secrets(), []);
    const again = await hearth(['secret', 'rm', 'API_KEY'], net.env(alice.token!));
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no secret API_KEY/);
    const ws = workspace({ 'after.py': 'import os\nprint(os.environ.get("API_KEY", "absent"))\n' });
    const r = await hearth(['run', join(ws, 'after.py')], net.env(alice.token!));
    assert.equal(r.stdout.trim(), 'absent');
  });

  it('refuses to start with a key other than the one the secrets were sealed with, and starts with the right one', async () => {
    await alice.setSecret('KEEP_ME', 'still-here-after-restart');
    await stopProcess(net.worker.proc);
    await stopProcess(net.broker.proc);
    const wrong = spawnHearth(['--data-dir', net.dataDir, 'broker', '--port', '0', ...(await backendFlagsFor(net.dataDir))], { HEARTH_SECRETS_KEY: randomBytes(32).toString('base64') });
    await waitForOutput(wrong, /not the key this broker's secrets were stored with/);
    const [code] = (await once(wrong, 'exit')) as [number | null];
    assert.equal(code, 1);

    // An operator's key file others may read is refused too.
    const keyFile = join(tempDir('key'), 'secrets.key');
    writeFileSync(keyFile, readFileSync(join(net.dataDir, 'secrets.key')));
    chmodSync(keyFile, 0o644);
    const open = spawnHearth(['--data-dir', net.dataDir, 'broker', '--port', '0', ...(await backendFlagsFor(net.dataDir)), '--secrets-key-file', keyFile]);
    await waitForOutput(open, /readable or writable by others/);
    await once(open, 'exit');
    chmodSync(keyFile, 0o600);

    // The same key, given by the operator: the broker starts and the secret is there.
    const good = spawnHearth(['--data-dir', net.dataDir, 'broker', '--port', '0', ...(await backendFlagsFor(net.dataDir)), '--secrets-key-file', keyFile]);
    const m = await waitForOutput(good, /broker listening on (http:\/\/127\.0\.0\.1:\d+)/);
    try {
      const c = new BrokerClient({ url: m[1]!, token: alice.token! });
      assert.deepEqual((await c.secrets()).map((s) => s.name), ['KEEP_ME']);
    } finally {
      await stopProcess(good);
    }
    // Network.stop stops these again; they are already gone.
  });
});
