// `hearth run` end to end: a real broker and worker in their own processes, real python3.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, readdirSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, jobProcesses } from './job-processes';
import { hearth, Network, REPO, spawnHearth, waitFor, waitForOutput, workspace } from './helpers';

const TBWRITER = readFileSync(join(REPO, 'test/fixtures/py/tbwriter.py'));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('hearth run (integration)', function () {
  this.timeout(120_000);
  let net: Network;
  before(async () => {
    net = await Network.start();
  });
  after(async () => {
    await net?.stop();
  });

  it('delivers thousands of stdout and stderr lines complete and in order, and exits with the job\'s code', async () => {
    const ws = workspace({
      'main.py': [
        'import sys',
        'for i in range(20000):',
        '    print(f"out {i} " + "x" * (i % 97))',
        '    if i % 7 == 0: print(f"err {i}", file=sys.stderr)',
        'sys.stdout.write("\\rprogress 50%\\rprogress 100%\\n")',
        'sys.exit(7)',
      ].join('\n'),
    });
    const r = await hearth(['run', join(ws, 'main.py')], net.env());
    assert.equal(r.code, 7, r.stderr.slice(-2000));
    const firstErrLine = r.stderr.split('\n')[0]!;
    assert.match(firstErrLine, /^job_[0-9A-Za-z]+$/, 'the job id is alone on the first line of stderr');
    const out = r.stdout.split('\n');
    for (let i = 0; i < 20000; i++) assert.equal(out[i], `out ${i} ${'x'.repeat(i % 97)}`);
    assert.equal(out[20000], '\rprogress 50%\rprogress 100%', 'carriage-return progress lines are kept as they are');
    const errs = r.stderr.split('\n').filter((l) => l.startsWith('err '));
    assert.deepEqual(errs, Array.from({ length: Math.ceil(20000 / 7) }, (_, k) => `err ${k * 7}`));
    const job = await net.client().job(firstErrLine);
    assert.equal(job.status, 'failed');
    assert.equal(job.exitCode, 7);
  });

  it('reports the scalars the job wrote, with NaN and infinities, per run folder', async () => {
    const ws = workspace({
      'tbwriter.py': TBWRITER,
      'train.py': [
        'import math, time',
        'from tbwriter import SummaryWriter',
        'a = SummaryWriter("runs/exp_a"); b = SummaryWriter("runs/exp_b"); top = SummaryWriter("runs")',
        'for step in range(300):',
        '    a.add_scalar("train/loss", 1.0 / (step + 1), step); b.add_scalar("train/loss", 2.0 / (step + 1), step)',
        '    if step % 50 == 0: a.flush(); time.sleep(0.05)',
        'a.add_scalar("special", float("nan"), 1); a.add_scalar("special", float("inf"), 2); a.add_scalar("special", float("-inf"), 3)',
        'top.add_scalar("lr", 0.1, 0)',
        'a.close(); b.close(); top.close()',
        'print("done")',
      ].join('\n'),
    });
    const r = await hearth(['run', join(ws, 'train.py')], net.env());
    assert.equal(r.code, 0, r.stderr);
    const jobId = r.stderr.split('\n')[0]!;
    const s = await hearth(['scalars', jobId, '--json'], net.env());
    assert.equal(s.code, 0, s.stderr);
    const table = JSON.parse(s.stdout) as Record<string, Record<string, [number, number | string][]>>;
    const expect = (k: number) => Array.from({ length: 300 }, (_, step) => [step, Math.fround(k / (step + 1))]);
    assert.deepEqual(table['exp_a']!['train/loss'], expect(1));
    assert.deepEqual(table['exp_b']!['train/loss'], expect(2));
    assert.deepEqual(table['exp_a']!['special'], [[1, 'NaN'], [2, 'Infinity'], [3, '-Infinity']]);
    assert.deepEqual(table['.']!['lr'], [[0, Math.fround(0.1)]]);
  });

  it('uploads outputs as artifacts that pull back byte-identical, resuming a partial download', async () => {
    const ws = workspace({
      'save.py': [
        'import os, random',
        'random.seed(1)',
        'os.makedirs("outputs/nested", exist_ok=True)',
        'open("outputs/model.pt", "wb").write(random.randbytes(3_000_000))',
        'open("outputs/nested/head.safetensors", "wb").write(random.randbytes(12345))',
        'open("outputs/empty.bin", "wb").close()',
        'open("not-an-output.txt", "w").write("x")',
      ].join('\n'),
    });
    const r = await hearth(['run', join(ws, 'save.py'), '--outputs', 'outputs/**'], net.env());
    assert.equal(r.code, 0, r.stderr);
    const jobId = r.stderr.split('\n')[0]!;
    const arts = await net.client().artifacts(jobId);
    assert.deepEqual(arts.map((a) => a.path), ['outputs/empty.bin', 'outputs/model.pt', 'outputs/nested/head.safetensors']);
    const jobDir = join(net.worker.workDir, 'jobs', jobId);
    const findOnWorker = (rel: string) => {
      // the worker's copy of what the job wrote, to compare bytes with
      const stack = [jobDir];
      while (stack.length) {
        const d = stack.pop()!;
        for (const e of readdirSync(d, { withFileTypes: true })) {
          const p = join(d, e.name);
          if (e.isDirectory()) stack.push(p);
          else if (p.endsWith('/' + rel)) return readFileSync(p);
        }
      }
      return undefined;
    };
    const dest = join(ws, 'pulled');
    const p1 = await hearth(['pull', jobId, '--dest', dest, '--json'], net.env());
    assert.equal(p1.code, 0, p1.stderr);
    for (const a of arts) {
      const got = readFileSync(join(dest, a.path));
      assert.equal(sha(got), a.sha256);
      const original = findOnWorker(a.path);
      if (original) assert.ok(got.equals(original), `${a.path} is byte-identical to what the job wrote`);
    }
    // Resume: leave half of the model as a .part file, then pull again.
    const model = join(dest, 'outputs/model.pt');
    const whole = readFileSync(model);
    renameSync(model, model + '.part');
    truncateSync(model + '.part', 1_000_000);
    const p2 = await hearth(['pull', jobId, '--dest', dest, '--json'], net.env());
    assert.equal(p2.code, 0, p2.stderr);
    const pulled = JSON.parse(p2.stdout) as { path: string; resumedFrom: number; skipped: boolean }[];
    assert.equal(pulled.find((f) => f.path === 'outputs/model.pt')!.resumedFrom, 1_000_000);
    assert.ok(pulled.find((f) => f.path === 'outputs/nested/head.safetensors')!.skipped);
    assert.ok(readFileSync(model).equals(whole));
    assert.ok(!existsSync(model + '.part'));
    // A corrupt partial (wrong bytes) is caught by the hash and not kept.
    copyFileSync(model, model + '.part');
    truncateSync(model + '.part', 500_000);
    const buf = readFileSync(model + '.part');
    buf[10] = buf[10]! ^ 0xff;
    writeFileSync(model + '.part', buf);
    rmSync(model);
    const p3 = await hearth(['pull', jobId, '--dest', dest], net.env());
    assert.notEqual(p3.code, 0);
    assert.match(p3.stderr, /do not match/);
    assert.ok(!existsSync(model), 'a file that fails verification never takes its real name');
  });

  it('cancel stops the whole process group and still uploads what the job wrote', async () => {
    const ws = workspace({
      'loop.py': [
        'import os, subprocess, sys, time',
        'child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])',
        'print(f"pids {os.getpid()} {child.pid}", flush=True)',
        'os.makedirs("outputs", exist_ok=True)',
        'open("outputs/partial.pt", "wb").write(b"checkpoint")',
        'i = 0',
        'while True:',
        '    print(f"tick {i}", flush=True); i += 1; time.sleep(0.05)',
      ].join('\n'),
    });
    const p = spawnHearth(['run', join(ws, 'loop.py')], net.env());
    const closed = new Promise<[number | null]>((res) => p.on('close', (code) => res([code])));
    const m = await waitForOutput(p, /pids (\d+) (\d+)/);
    const jobId = (await waitForOutput(p, /^(job_\w+)$/m))[1]!;
    // The printed pids are the sandbox's own (its pid namespace): find the host's by the job id.
    assert.ok(m[1] && m[2]);
    const pids = jobProcesses(jobId);
    assert.ok(pids.length >= 2, `found the job and its child: ${pids.join(' ')}`);
    const c = await hearth(['cancel', jobId], net.env());
    assert.equal(c.code, 0, c.stderr);
    const [code] = await closed;
    assert.equal(code, 130);
    const job = await net.client().job(jobId);
    assert.equal(job.status, 'cancelled');
    await waitFor('the job and its child to be gone', () => !pids.some(isAlive) || undefined, 10_000);
    const arts = await net.client().artifacts(jobId);
    assert.deepEqual(arts.map((a) => a.path), ['outputs/partial.pt']);
  });

  it('a job killed mid-run fails with the signal and keeps its outputs', async () => {
    const ws = workspace({
      'die.py': ['import os, signal', 'os.makedirs("outputs", exist_ok=True)', 'open("outputs/w.pt", "wb").write(b"w" * 1000)', 'print("about to die", flush=True)', 'os.kill(os.getpid(), signal.SIGKILL)'].join('\n'),
    });
    const r = await hearth(['run', join(ws, 'die.py')], net.env());
    assert.notEqual(r.code, 0);
    assert.match(r.stdout, /about to die/);
    const jobId = r.stderr.split('\n')[0]!;
    const job = await net.client().job(jobId);
    assert.equal(job.status, 'failed');
    assert.match(r.stderr, /SIGKILL/);
    assert.deepEqual((await net.client().artifacts(jobId)).map((a) => a.path), ['outputs/w.pt']);
  });

  it('carries a 10 MB line intact', async () => {
    const ws = workspace({ 'big.py': 'import sys\nsys.stdout.write("a" * (10 * 1024 * 1024 - 1) + "b\\n")\nprint("after")\n' });
    const r = await hearth(['run', join(ws, 'big.py')], net.env());
    assert.equal(r.code, 0, r.stderr.slice(0, 500));
    assert.equal(r.stdout.length, 10 * 1024 * 1024 + 1 + 6);
    assert.ok(r.stdout.startsWith('aaaa'));
    assert.ok(r.stdout.endsWith('ab\nafter\n'));
  });

  it('a lease that expires stops its job', async () => {
    for (const l of await net.client().leases()) if (l.status === 'active') await net.client().releaseLease(l.id);
    const lease = await net.client().createLease({ hours: 3 / 3600 });
    const ws = workspace({ 'slow.py': 'import time\nfor i in range(600):\n    print(i, flush=True)\n    time.sleep(0.1)\n' });
    const r = await hearth(['run', join(ws, 'slow.py'), '--lease', lease.id], net.env());
    assert.equal(r.code, 124, r.stderr);
    assert.match(r.stderr, /lease expired/);
    const l = await net.client().lease(lease.id);
    assert.equal(l.status, 'expired');
    assert.ok(l.secondsUsed <= 4 && l.secondsUsed >= 3, `metered ${l.secondsUsed} s`);
  });
});
