// The `hearth` command as a person meets it (issue 8, items 10, 11, 16): a real broker and worker
// in their own processes, real python3, the built CLI.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brokerLogger } from '../../src/cli/broker-log';
import { startBroker } from '../../src/broker/server';
import { CLI, hearth, Network, spawnHearth, stopProcess, tempDir, waitForOutput, workspace } from './helpers';

describe('hearth CLI (integration)', function () {
  this.timeout(120_000);
  let net: Network;
  before(async () => (net = await Network.start()));
  after(async () => net?.stop());

  it('runs src/train.py of a project that imports a package at its root, uploading the project and saying what', async () => {
    const ws = workspace({
      'pyproject.toml': '[project]\nname = "demo"\n',
      'mypkg/__init__.py': 'VALUE = 42\n',
      'src/train.py': 'import os, sys\nimport mypkg\nprint("value", mypkg.VALUE, "cwd", os.getcwd() == os.path.dirname(os.path.dirname(os.path.abspath(__file__))), sys.argv[1:])\n',
      'data/big.bin': Buffer.alloc(5000, 1),
    });
    // From inside src/, as a person in that folder would type it.
    const r = await hearth(['run', 'train.py', '--', '--epochs', '3'], net.env(), { cwd: join(ws, 'src') });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "value 42 cwd True ['--epochs', '3']\n");
    assert.match(r.stderr, new RegExp(`hearth: uploaded ${ws}: 4 files, 5\\.\\d KiB \\(0 already on the broker; sent 4, 5\\.\\d KiB\\)`));
    const again = await hearth(['run', join(ws, 'src/train.py')], net.env());
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /: 4 files, 5\.\d KiB \(4 already on the broker; sent 0, 0 B\)/);
    // --workdir names the folder to upload.
    const sub = await hearth(['run', join(ws, 'src/train.py'), '--workdir', join(ws, 'src')], net.env());
    assert.equal(sub.code, 1, 'without the project root, mypkg is not there');
    assert.match(sub.stderr, /ModuleNotFoundError: No module named 'mypkg'/);
    assert.match(sub.stderr, new RegExp(`uploaded ${join(ws, 'src')}: 1 file,`));
  });

  it('exits 128+N for a job killed by signal N (SIGSEGV is 139), and ends with a one-line summary', async () => {
    const ws = workspace({ 'segv.py': 'import ctypes\nprint("before", flush=True)\nctypes.string_at(0)\n' });
    const r = await hearth(['run', join(ws, 'segv.py')], net.env());
    assert.equal(r.code, 139, r.stderr);
    const job = r.stderr.split('\n')[0]!;
    const last = r.stderr.trimEnd().split('\n').at(-1)!;
    assert.match(last, new RegExp(`^hearth: ${job} failed \\(SIGSEGV\\) in \\d+s · cost ≈?[\\d.]+ credits · no artifacts$`));
    // logs and logs -f print the same bytes for a finished job and exit with the same code.
    const a = await hearth(['logs', job], net.env());
    const b = await hearth(['logs', job, '--follow'], net.env());
    assert.equal(a.stdout, 'before\n');
    assert.deepEqual([a.code, a.stdout, a.stderr], [b.code, b.stdout, b.stderr]);
    assert.equal(a.code, 139);
  });

  it('the summary names the artifacts and the pull command; --json keeps stdout to the JSON', async () => {
    const ws = workspace({ 'w.py': 'import os\nos.makedirs("outputs", exist_ok=True)\nopen("outputs/m.pt", "w").write("w")\nprint("to stderr under --json")\n' });
    const r = await hearth(['--json', 'run', join(ws, 'w.py')], net.env());
    assert.equal(r.code, 0, r.stderr);
    const job = JSON.parse(r.stdout) as { id: string; status: string };
    assert.equal(job.status, 'succeeded');
    assert.match(r.stderr, /to stderr under --json/);
    assert.match(r.stderr, new RegExp(`succeeded in \\d+s · cost .* · 1 artifact: hearth pull ${job.id}\\n$`));
  });

  it('logs --tail N prints the last N lines; jobs filters, limits and shows duration and reason', async () => {
    const ws = workspace({ 'lines.py': 'import sys\nfor i in range(100): print(f"line {i}")\nsys.exit(3)\n' });
    const r = await hearth(['run', join(ws, 'lines.py')], net.env());
    assert.equal(r.code, 3);
    const job = r.stderr.split('\n')[0]!;
    // The last 4 lines: two of the job's, then the worker's notice and the status line.
    const t = await hearth(['logs', job, '--tail', '4'], net.env());
    assert.equal(t.stdout, 'line 98\nline 99\n', t.stderr);
    assert.match(t.stderr, /^hearth: info: the job produced no new or changed files.*\nhearth: job failed \(exit code 3\): exited with code 3\n$/);
    assert.equal(t.code, 3);
    const lease = (await net.client().job(job)).leaseId;
    const j = await hearth(['jobs', '--status', 'failed', '--limit', '1'], net.env());
    assert.equal(j.code, 0, j.stderr);
    const rows = j.stdout.trimEnd().split('\n');
    assert.match(rows[0]!, /^JOB\s+STATUS\s+EXIT\s+DURATION\s+ENTRY\s+CREATED\s+REASON$/);
    assert.equal(rows.length, 2);
    assert.match(rows[1]!, new RegExp(`^${job}\\s+failed\\s+3\\s+\\d+s\\s+lines\\.py\\s.*exited with code 3$`));
    const byLease = JSON.parse((await hearth(['--json', 'jobs', '--lease', lease], net.env())).stdout) as { leaseId: string }[];
    assert.ok(byLease.length >= 1 && byLease.every((x) => x.leaseId === lease));
    const bad = await hearth(['jobs', '--status', 'done'], net.env());
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /--status: expected queued, running, succeeded, failed, cancelled, lost \(got "done"\)/);
  });

  it('usage errors: script options before -- are explained; an id of the wrong kind is named once; exit 64', async () => {
    const ws = workspace({ 'train.py': 'print(1)\n' });
    const leasesBefore = (await net.client().leases()).length;
    const r = await hearth(['run', join(ws, 'train.py'), '--epochs', '3'], net.env());
    assert.equal(r.code, 64);
    assert.match(r.stderr, /--epochs is not an option of hearth run; arguments for the script go after --:\n {2}hearth run .*train\.py -- --epochs 3\n/);
    assert.equal((await net.client().leases()).length, leasesBefore, 'nothing leased');
    const rel = await hearth(['release', 'job_0123456789abcdef'], net.env());
    assert.equal(rel.code, 64);
    assert.equal(rel.stderr, 'hearth: expected a lease id like lease_…, got "job_0123456789abcdef"\n');
    const logs = await hearth(['logs', 'lease_0123456789abcdef'], net.env());
    assert.equal(logs.stderr, 'hearth: expected a job id like job_…, got "lease_0123456789abcdef"\n');
    const unknown = await hearth(['lease', '--gpus', 'H100'], net.env());
    assert.equal(unknown.code, 64);
    const down = await hearth(['jobs'], { HEARTH_BROKER_URL: 'http://127.0.0.1:9', HEARTH_TOKEN: 'x' });
    assert.equal(down.code, 69, down.stderr);
    assert.match(down.stderr, /cannot reach the broker at http:\/\/127\.0\.0\.1:9/);
  });

  it('a job whose lease expires exits 124, a cancelled one 130', async () => {
    for (const l of await net.client().leases()) if (l.status === 'active') await net.client().releaseLease(l.id);
    const lease = await net.client().createLease({ hours: 2 / 3600 });
    const ws = workspace({ 'slow.py': 'import time\nfor i in range(600):\n    print(i, flush=True)\n    time.sleep(0.1)\n' });
    const r = await hearth(['run', join(ws, 'slow.py'), '--lease', lease.id], net.env());
    assert.equal(r.code, 124, r.stderr);
    assert.match(r.stderr, /lease expired/);
    const p = spawnHearth(['run', join(ws, 'slow.py')], net.env());
    const job = (await waitForOutput(p, /^(job_\w+)$/m))[1]!;
    await waitForOutput(p, /^3$/m);
    const closed = new Promise<number | null>((res) => p.on('close', (c) => res(c)));
    assert.equal((await hearth(['cancel', job], net.env())).code, 0);
    assert.equal(await closed, 130);
  });

  it('every subcommand\'s help lists the global flags, with examples', async () => {
    for (const cmd of [['run'], ['logs'], ['jobs'], ['gpus'], ['lease'], ['pull'], ['up'], ['down'], ['token', 'create'], ['kernel', 'exec']]) {
      const h = await hearth([...cmd, '--help'], {});
      assert.equal(h.code, 0, h.stderr);
      for (const f of ['--json', '--broker <url>', '--token <token>', '--data-dir <dir>']) assert.ok(h.stdout.includes(f), `hearth ${cmd.join(' ')} --help lists ${f}`);
      assert.match(h.stdout, /\nExamples:\n {2}\$ hearth /, `hearth ${cmd.join(' ')} --help has examples`);
    }
  });

  it('notes that stdin is not passed on when something is piped in', async () => {
    const ws = workspace({ 'r.py': 'import sys\nprint(repr(sys.stdin.read()))\n' });
    const input = join(ws, 'input.txt');
    writeFileSync(input, 'some data\n');
    const p = spawn(process.execPath, [CLI, 'run', join(ws, 'r.py')], { env: { ...process.env, ...net.env() }, stdio: [openSync(input, 'r'), 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((res) => p.on('close', (c) => res(c)));
    assert.equal(code, 0, err);
    assert.equal(out, "''\n");
    assert.match(err, /the job's stdin is empty \(\/dev\/null\); what is piped into `hearth run` is not passed on/);
  });
});

describe('hearth up / down (integration)', function () {
  this.timeout(120_000);

  it('a second hearth up on the same data dir refuses; hearth down stops the first', async () => {
    const dataDir = join(tempDir('up'), 'data');
    const up = spawnHearth(['--data-dir', dataDir, 'up', '--port', '0', '--nvidia-smi', join(dataDir, 'none')]);
    try {
      await waitForOutput(up, /Hearth is up at/, 60_000);
      const pid = readFileSync(join(dataDir, 'up.pid'), 'utf8').trim();
      assert.equal(pid, String(up.pid));
      const second = await hearth(['--data-dir', dataDir, 'up', '--port', '0']);
      assert.equal(second.code, 1);
      assert.match(second.stderr, new RegExp(`hearth up is already running on ${dataDir} \\(pid ${pid}\\); stop it with \`hearth --data-dir ${dataDir} down\``));
      const closed = new Promise<number | null>((res) => up.on('close', (c) => res(c)));
      const down = await hearth(['--data-dir', dataDir, 'down']);
      assert.equal(down.code, 0, down.stderr);
      assert.match(down.stderr, new RegExp(`stopped hearth up \\(pid ${pid}\\)`));
      await closed;
      assert.ok(!existsSync(join(dataDir, 'up.pid')));
      // A lock whose process is gone is stale: up starts over it.
      writeFileSync(join(dataDir, 'up.pid'), '999999\n');
      const again = spawnHearth(['--data-dir', dataDir, 'up', '--port', '0', '--nvidia-smi', join(dataDir, 'none')]);
      await waitForOutput(again, /Hearth is up at/, 60_000);
      assert.equal((await hearth(['--data-dir', dataDir, 'down'])).code, 0);
      await stopProcess(again);
    } finally {
      await stopProcess(up);
    }
  });
});

describe('the broker log (integration)', function () {
  this.timeout(60_000);

  it('rotates by size, keeps N files, and logs a request only when it failed', async () => {
    const dir = tempDir('blog');
    mkdirSync(join(dir, 'logs'));
    const file = join(dir, 'logs', 'broker.log');
    const b = await startBroker({ dataDir: join(dir, 'data'), port: 0 }, brokerLogger({ file, rotateBytes: 4096, keep: 2 }));
    try {
      for (let i = 0; i < 60; i++) {
        assert.equal((await fetch(`${b.url}/v1/health`)).status, 200);
        assert.equal((await fetch(`${b.url}/v1/no-such-route-${i}`)).status, 404);
      }
    } finally {
      await b.close();
    }
    await new Promise((r) => setTimeout(r, 200));
    const files = readdirSync(join(dir, 'logs')).sort();
    assert.deepEqual(files, ['broker.log', 'broker.log.1', 'broker.log.2']);
    for (const f of files) assert.ok(statSync(join(dir, 'logs', f)).size < 4096 + 1024, `${f} is about the rotation size`);
    const all = files.map((f) => readFileSync(join(dir, 'logs', f), 'utf8')).join('');
    assert.doesNotMatch(all, /\/v1\/health|incoming request/);
    assert.match(all, /"statusCode":404/);
  });
});
