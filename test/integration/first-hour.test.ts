// The first hour of a new user, second pass (issue 20): what they trip on, through the built
// `hearth` against a real broker and worker in their own processes, real python3 and ipykernel.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { isTerminal } from '../../src/shared/protocol';
import { CLI, hearth, Network, REPO, spawnHearth, stopProcess, tempDir, waitFor, waitForOutput, workspace } from './helpers';

// eslint-disable-next-line no-control-regex
const ESC = /\x1b/;

describe('the first hour: Ctrl-C at any moment of hearth run (integration)', function () {
  this.timeout(180_000);
  let net: Network;
  before(async () => (net = await Network.start()));
  after(async () => net?.stop());

  const releaseAll = async () => {
    for (const l of await net.client().leases()) if (l.status === 'active') await net.client().releaseLease(l.id);
  };
  const activeLeases = async () => (await net.client().leases()).filter((l) => l.status === 'active');

  /**
   * Starts `hearth run` with no lease held (so it takes one of its own), waits for `moment`, sends
   * SIGINT, and checks what is left: nothing running, no lease, and a line saying what it stopped.
   */
  async function interruptAt(moment: (p: ChildProcess, jobsBefore: Set<string>) => Promise<unknown>, files: Record<string, string | Buffer>): Promise<string> {
    await releaseAll();
    const jobsBefore = new Set((await net.client().jobs()).map((j) => j.id));
    const ws = workspace({ 'slow.py': 'import time\nfor i in range(900):\n    print(i, flush=True)\n    time.sleep(0.1)\n', ...files });
    const p = spawnHearth(['run', join(ws, 'slow.py')], net.env());
    let err = '';
    p.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const closed = once(p, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
    await moment(p, jobsBefore);
    p.kill('SIGINT');
    const [code] = await closed;
    assert.equal(code, 130, err);
    // It says what it stopped: the lease it had taken, or the job it had submitted.
    assert.match(err, /hearth: (nothing was submitted; released lease_\w+, the lease it took|nothing was leased or submitted|cancelling job_\w+)/, err);
    // Nothing it started outlives it: every job it submitted ends, and no lease stays active.
    const mine = (await net.client().jobs()).filter((j) => !jobsBefore.has(j.id));
    for (const j of mine) await waitFor(`${j.id} to end`, async () => isTerminal((await net.client().job(j.id)).status) || undefined);
    await waitFor('no active lease', async () => ((await activeLeases()).length === 0 ? true : undefined));
    for (const j of mine) assert.equal((await net.client().job(j.id)).status, 'cancelled', `${j.id} was cancelled, not run on`);
    // A later run takes a lease of its own, not one the interrupted run left.
    return err;
  }

  it('once its lease exists, before or during the upload: the lease is released and nothing runs', async () => {
    const leasesBefore = new Set((await net.client().leases()).map((l) => l.id));
    // A big project keeps the run in its upload a while after the lease exists.
    const err = await interruptAt(
      () => waitFor('the run\'s lease', async () => ((await net.client().leases()).some((l) => !leasesBefore.has(l.id)) ? true : undefined), 60_000, 20),
      { 'data/blob.bin': randomBytes(96 * 1024 * 1024) },
    );
    assert.doesNotMatch(err, /^hearth: on lease /m, 'the run took a lease of its own');
  });

  it('once the job is submitted, before it printed anything: the job is cancelled and its lease released', async () => {
    await interruptAt(
      (_p, before) => waitFor('the job to be submitted', async () => ((await net.client().jobs()).some((j) => !before.has(j.id)) ? true : undefined), 60_000, 20),
      {},
    );
  });

  it('once the job is running: the job is cancelled, its lease released, and a later run leases its own', async () => {
    const err = await interruptAt((p) => waitForOutput(p, /^2$/m), {});
    assert.match(err, /cancelling job_/);
    const ws = workspace({ 'quick.py': 'print("ok")\n' });
    const r = await hearth(['run', join(ws, 'quick.py')], net.env());
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /hearth: leased lease_\w+ for this run/);
  });
});

describe('the first hour: CLI messages (integration)', function () {
  this.timeout(180_000);
  let net: Network;
  before(async () => (net = await Network.start()));
  after(async () => net?.stop());

  it('hearth pull on a job still running says so and exits non-zero; --wait pulls once it has ended', async () => {
    const ws = workspace({
      'w.py': 'import os, time\nfor i in range(30):\n    print(i, flush=True)\n    time.sleep(0.1)\nos.makedirs("outputs", exist_ok=True)\nopen("outputs/m.pt", "w").write("w")\n',
    });
    const p = spawnHearth(['run', join(ws, 'w.py')], net.env());
    const closed = once(p, 'close');
    const job = (await waitForOutput(p, /^(job_\w+)$/m))[1]!;
    await waitForOutput(p, /^1$/m);
    const dest = join(ws, 'pulled');
    const early = await hearth(['pull', job, '--dest', dest], net.env());
    assert.notEqual(early.code, 0);
    assert.match(early.stderr, new RegExp(`${job} is still running; .*hearth pull ${job} --wait`));
    assert.doesNotMatch(early.stderr, /has no artifacts/);
    const waited = await hearth(['pull', job, '--dest', dest, '--wait'], net.env());
    assert.equal(waited.code, 0, waited.stderr);
    assert.equal(readFileSync(join(dest, 'outputs', 'm.pt'), 'utf8'), 'w');
    await closed;
  });

  it('hearth run trian.py suggests train.py', async () => {
    const ws = workspace({ 'train.py': 'print(1)\n' });
    const r = await hearth(['run', 'trian.py'], net.env(), { cwd: ws });
    assert.equal(r.code, 64);
    assert.equal(r.stderr, 'hearth: trian.py is not a file; did you mean train.py?\n');
  });

  it('a traceback names the renter\'s relative path, not the worker\'s job folder', async () => {
    const ws = workspace({ 'src/train.py': 'import helper\nhelper.boom()\n', 'src/helper.py': 'def boom():\n    raise ValueError("boom")\n', '.hearthignore': '' });
    const r = await hearth(['run', join(ws, 'src/train.py'), '--env', 'PYTHONPATH=src'], net.env());
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /File "src\/helper\.py", line 2, in boom/);
    assert.doesNotMatch(r.stderr, /\/jobs\/job_/);
  });

  it('token errors say where the token came from and how to get one without a working one', async () => {
    const r = await hearth(['jobs'], { ...net.env(), HEARTH_TOKEN: 'nonsense' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^hearth: unknown token\n {2}the token came from the HEARTH_TOKEN environment variable \(unset it to use the data dir's config\.json\), for http:\/\/127\.0\.0\.1:\d+\n/);
    assert.match(r.stderr, /admin-token/);
    const f = await hearth(['--token', 'nonsense', 'jobs'], { HEARTH_BROKER_URL: net.broker.url });
    assert.match(f.stderr, /the token came from the --token flag/);
  });

  it('--broker http://host/v1 and https:// to a plain broker say what to type', async () => {
    const v1 = await hearth(['--broker', `${net.broker.url}/v1`, 'jobs'], { HEARTH_TOKEN: net.broker.adminToken });
    assert.equal(v1.code, 64);
    assert.equal(v1.stderr, `hearth: a broker URL is the broker's address, without /v1: ${net.broker.url}\n`);
    const tls = await hearth(['--broker', net.broker.url.replace('http:', 'https:'), 'jobs'], { HEARTH_TOKEN: net.broker.adminToken });
    assert.equal(tls.code, 69);
    assert.match(tls.stderr, new RegExp(`it does not speak TLS: try ${net.broker.url.replace(/\./g, '\\.')}\\n`));
  });

  it('a file holding a stored secret, or named like one, is warned about when uploaded', async () => {
    const ws = workspace({ 'show.py': 'print("ran")\n', 'tok.txt': 'sk-live-0123456789abcdef\n', '.env': 'A=1\n', 'notes.txt': 'hello\n' });
    const set = spawn(process.execPath, [CLI, 'secret', 'set', 'MY_API_KEY'], { env: { ...process.env, ...net.env() }, stdio: ['pipe', 'pipe', 'pipe'] });
    set.stdin!.end(readFileSync(join(ws, 'tok.txt')));
    assert.equal((await once(set, 'close'))[0], 0);
    const r = await hearth(['run', join(ws, 'show.py')], net.env());
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /hearth: warning: uploaded tok\.txt, which holds your secret MY_API_KEY/);
    assert.match(r.stderr, /hearth: warning: uploaded \.env, whose name says it may hold a secret/);
    assert.doesNotMatch(r.stderr, /notes\.txt/);
    assert.match(r.stderr, /\.hearthignore/);
    // Listed in .hearthignore, they stay home and nothing is said.
    writeFileSync(join(ws, '.hearthignore'), 'tok.txt\n.env\n');
    const quiet = await hearth(['run', join(ws, 'show.py')], net.env());
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.doesNotMatch(quiet.stderr, /warning: uploaded/);
  });

  it('a notebook run piped into cat: each cell header comes before its outputs, and no colours', async () => {
    const code = (src: string) => ({ cell_type: 'code', metadata: {}, source: src, outputs: [], execution_count: null });
    const nb = { nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [code('print("first of one")\nprint("second of one")'), code('print("\\x1b[31mred\\x1b[0m two")')] };
    const ws = workspace({ 'nb.ipynb': JSON.stringify(nb) });
    const r = await hearth(['run', join(ws, 'nb.ipynb')], net.env());
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\[hearth\] cell 1\/2\nfirst of one\nsecond of one\n\[hearth\] cell 2\/2\nred two\n/);
    assert.doesNotMatch(r.stdout + r.stderr, ESC, 'a pipe gets no escape sequences');
  });

  it('hearth jobs lists a stopped kernel session as stopped, not as a cancelled .hearth-kernel', async () => {
    const started = await hearth(['kernel', 'start'], net.env());
    assert.equal(started.code, 0, started.stderr);
    const id = started.stdout.trim();
    assert.equal((await hearth(['kernel', 'stop', id], net.env())).code, 0);
    await waitFor('the kernel to stop', async () => isTerminal((await net.client().job(id)).status) || undefined);
    const j = await hearth(['jobs'], net.env());
    const row = j.stdout.split('\n').find((l) => l.startsWith(id))!;
    assert.match(row, new RegExp(`^${id}\\s+stopped\\s.*\\(kernel session\\).*stopped by its owner$`));
    assert.doesNotMatch(row, /\.hearth-kernel|cancelled/);
  });
});

describe('the first hour: --data-dir (integration)', function () {
  this.timeout(120_000);

  it('hearth up --data-dir DIR says HEARTH_DATA_DIR=DIR, and a CLI with no data dir named finds it while it runs', async () => {
    const home = tempDir('home');
    const dataDir = join(tempDir('dd'), 'hearth');
    const env = { HOME: home, HEARTH_DATA_DIR: '' };
    const up = spawnHearth(['--data-dir', dataDir, 'up', '--port', '0'], env);
    try {
      await waitForOutput(up, /Hearth is up at http:\/\/127\.0\.0\.1:\d+/, 90_000);
      await waitForOutput(up, /stops both/);
      const said = await waitForOutput(up, /CLI: +HEARTH_DATA_DIR=(\S+)/);
      assert.equal(said[1], dataDir);
      const g = await hearth(['gpus'], env);
      assert.equal(g.code, 0, g.stderr);
      assert.match(g.stderr, new RegExp(`using the local network of \`hearth up --data-dir ${dataDir}\``));
      assert.match(g.stdout, /free/i);
    } finally {
      await stopProcess(up, 'SIGINT', 70_000);
    }
    // Once it has stopped, nothing points at it, and the error says how to name a data dir.
    const after = await hearth(['gpus'], env);
    assert.equal(after.code, 64);
    assert.match(after.stderr, /HEARTH_DATA_DIR=DIR or --data-dir DIR/);
    rmSync(home, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });
});

/** The README's shell block that follows `marker`, as lines of commands (comments dropped). */
function readmeBlock(marker: string): string[] {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const at = readme.indexOf(marker);
  assert.ok(at >= 0, `README has ${marker}`);
  const m = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(m, `a sh block after ${marker}`);
  return m[1]!.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter(Boolean);
}

async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  s.close();
  await once(s, 'close');
  return port;
}

describe('the README quick start, run as written (integration)', function () {
  this.timeout(600_000);

  it('npm start, then the CLI lines in another terminal, from a fresh data dir, on the sample project', async () => {
    assert.deepEqual(readmeBlock('## Quick start'), ['npm start', 'npm test']);
    const lines = readmeBlock('In another terminal');
    const home = tempDir('home');
    // `npm link` puts `hearth` on the PATH; here a folder with it does.
    const bin = join(home, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'hearth'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
    chmodSync(bin + '/hearth', 0o755);
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, PATH: `${bin}:${process.env.PATH}` };
    for (const k of ['HEARTH_DATA_DIR', 'HEARTH_TOKEN', 'HEARTH_BROKER_URL']) delete env[k];
    // The one change to the README's `npm start`: a free port rather than 7777, which another
    // program on a shared machine may hold (arguments pass through, as the README says).
    const start = spawn('npm', ['start', '--', '--port', String(await freePort())], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let startOut = '';
    start.stdout!.on('data', (c: Buffer) => (startOut += c.toString()));
    start.stderr!.on('data', (c: Buffer) => (startOut += c.toString()));
    const pulled: string[] = [];
    // What the runs leave in the sample (its upload cache, the pulled runs) goes with the test.
    const sampleState = join(REPO, 'examples', 'quickstart', '.hearth');
    if (!existsSync(sampleState)) pulled.push(sampleState);
    try {
      await waitFor('hearth up', () => (/Hearth is up at http/.test(startOut) ? true : undefined), 300_000, 200).catch((err: Error) => {
        throw new Error(`${err.message}; npm start printed:\n${startOut.slice(-3000)}`);
      });
      assert.doesNotMatch(startOut, /allowScripts|install scripts/i);
      let cwd = REPO;
      let job = '';
      for (const line of lines) {
        const cd = /^cd (\S+)$/.exec(line);
        if (cd) {
          cwd = join(cwd, cd[1]!);
          continue;
        }
        const cmd = line.replace(/\bJOB\b/g, job);
        const out = execFileSync('bash', ['-c', `${cmd} 2>"$HOME/stderr"`], { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
        const err = readFileSync(join(home, 'stderr'), 'utf8');
        if (/^hearth run /.test(line)) {
          job = err.split('\n')[0]!;
          assert.match(job, /^job_\w+$/);
          // The sample is a project of its own: its folder is uploaded, not the repository.
          assert.match(err, new RegExp(`hearth: uploaded ${join(REPO, 'examples', 'quickstart')}: [1-9] files,`));
          assert.match(out, /quickstart/);
          assert.match(err, /succeeded .*1 artifact: hearth pull/);
        }
        if (/^hearth scalars /.test(line)) {
          const runs = JSON.parse(out) as Record<string, Record<string, [number, number][]>>;
          assert.ok(Object.values(runs).some((tags) => (tags['loss/train_loss']?.length ?? 0) > 0), out);
        }
        if (/^hearth pull /.test(line)) {
          const dest = join(cwd, '.hearth', 'runs', job);
          pulled.push(dest);
          assert.ok(existsSync(join(dest, 'outputs', 'model.pt')), `${out}${err}`);
        }
      }
      assert.ok(job, 'the block ran a job');
    } finally {
      if (start.pid) process.kill(-start.pid, 'SIGINT');
      await once(start, 'close');
      for (const d of pulled) rmSync(d, { recursive: true, force: true });
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('npm finds every install script of the lock file reviewed in allowScripts (npm start on a fresh clone warns of none)', () => {
    const out = execFileSync('npm', ['approve-scripts', '--allow-scripts-pending', '--json'], { cwd: REPO, encoding: 'utf8' });
    assert.deepEqual((JSON.parse(out) as { allowScripts: unknown[] }).allowScripts, []);
  });
});
