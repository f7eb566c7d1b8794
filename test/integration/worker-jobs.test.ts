// A real broker on a loopback port, the real worker agent, real python3 scripts: what a job
// prints, writes and leaves behind reaches the broker complete, in order and byte-identical.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import { join, relative } from 'node:path';
import { BrokerClient } from '../../src/client/api';
import { startBroker, type RunningBroker } from '../../src/broker/server';
import { scalarTable, type JobEvent, type ScalarPoint, type ScalarTable } from '../../src/shared/protocol';
import { startWorker, type RunningWorker } from '../../src/worker/main';
import { isAlive, jobProcesses } from './job-processes';
import { finalStatus, follow, logOf, submit, waitFor } from './in-process-jobs';
import { backendFor } from '../backend';

const TFEVENTS = join(__dirname, '..', 'fixtures', 'tfevents');

interface Net {
  dir: string;
  broker: RunningBroker;
  client: BrokerClient;
  worker: RunningWorker;
  workerId: string;
  workerLog: string[];
  workerToken: string;
  workDir: string;
  leaseId?: string;
}

async function startNet(opts: { killGraceMs?: number } = {}): Promise<Net> {
  const dir = mkdtempSync(join(os.tmpdir(), 'hearth-worker-it-'));
  const broker = await startBroker({ ...(await backendFor(join(dir, 'broker'))), dataDir: join(dir, 'broker'), port: 0, heartbeatMs: 500 });
  const client = new BrokerClient({ url: broker.url, token: broker.adminToken! });
  const { token: workerToken } = await client.createToken('worker', 'test worker');
  const workerLog: string[] = [];
  const workDir = join(dir, 'worker');
  const worker = startWorker({
    brokerUrl: broker.url,
    token: workerToken,
    workDir,
    name: 'test-worker',
    // No GPU here: a path that does not exist makes the worker offer its CPU, as on a real CPU host.
    nvidiaSmi: join(dir, 'no-nvidia-smi'),
    killGraceMs: opts.killGraceMs ?? 1500,
    telemetryMs: 300,
    log: (level, msg, fields) => workerLog.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`),
  });
  const workerId = await worker.workerId;
  return { dir, broker, client, worker, workerId, workerLog, workerToken, workDir };
}

async function stopNet(net: Net): Promise<void> {
  await net.worker.stop();
  await net.broker.close();
  rmSync(net.dir, { recursive: true, force: true });
}

describe('worker running real jobs against a real broker', function () {
  this.timeout(120_000);
  let net: Net;
  beforeEach(async () => (net = await startNet()));
  afterEach(async () => stopNet(net));

  it('registers the CPU offer of a GPU-less host', async () => {
    const offers = await net.client.offers();
    const mine = offers.find((o) => o.workerId === net.workerId);
    assert.ok(mine, 'the worker offers something');
    assert.equal(mine.isGpu, false);
    assert.match(mine.gpuModel, /^CPU \(/);
    assert.equal(mine.workerName, 'test-worker');
    const saved = JSON.parse(readFileSync(join(net.workDir, 'worker.json'), 'utf8')) as { workerId: string };
    assert.equal(saved.workerId, net.workerId);
  });

  it('delivers 20 000 stdout lines and 2 000 stderr lines complete and in order, with exit status and env', async () => {
    const script = [
      'import os, sys',
      'print("env", os.environ["HEARTH_JOB_ID"], os.environ["GREETING"], os.path.basename(os.environ["HEARTH_LOGDIR"]), "CUDA_VISIBLE_DEVICES" in os.environ, "HEARTH_TOKEN" in os.environ, sys.argv[1:])',
      'for i in range(20000):',
      '    print(f"line {i} ünïcödé 中文 😀 " + "x" * (i % 50))',
      '    if i % 10 == 0: print(f"err {i // 10}", file=sys.stderr)',
      'sys.stdout.write("progress 10%\\rprogress 100%\\r\\n")',
      'sys.exit(3)',
    ].join('\n');
    // The worker's own credentials must not reach the job's environment.
    process.env.HEARTH_TOKEN = 'the-worker-token';
    let events: JobEvent[];
    let jobId: string;
    try {
      jobId = await submit(net, { 'main.py': script }, { entry: 'main.py', args: ['a b', '--x'], env: { GREETING: 'hi' } });
      events = await follow(net, jobId);
    } finally {
      delete process.env.HEARTH_TOKEN;
    }
    const out = logOf(events, 'stdout');
    const expected =
      `env ${jobId} hi runs False False ['a b', '--x']\n` +
      Array.from({ length: 20000 }, (_, i) => `line ${i} ünïcödé 中文 😀 ${'x'.repeat(i % 50)}\n`).join('') +
      'progress 10%\rprogress 100%\r\n';
    assert.equal(out, expected);
    assert.equal(logOf(events, 'stderr'), Array.from({ length: 2000 }, (_, i) => `err ${i}\n`).join(''));
    // Batching: far fewer events than lines, and no event ends mid-line except the last.
    const outEvents = events.filter((e) => e.body.type === 'log' && e.body.stream === 'stdout');
    assert.ok(outEvents.length < 2000, `${outEvents.length} stdout events for 20 001 lines`);
    const st = finalStatus(events);
    assert.equal(st.status, 'failed');
    assert.equal(st.exitCode, 3);
    assert.equal(events[events.length - 1]!.body.type, 'status', 'the terminal status is the last event');
    const statuses = events.filter((e) => e.body.type === 'status').map((e) => (e.body as { status: string }).status);
    assert.deepEqual(statuses.slice(-2), ['running', 'failed']);
    assert.equal((await net.client.job(jobId)).exitCode, 3);
  });

  it('uploads the outputs byte-identical and reports success', async () => {
    const script = [
      'import os',
      'os.makedirs("outputs/ckpt", exist_ok=True)',
      'open("outputs/model.bin", "wb").write(bytes(range(256)) * 40000)',
      'open("outputs/ckpt/.meta", "w").write("epoch=3\\n")',
      'open("not-an-output.txt", "w").write("x")',
      'print("saved")',
    ].join('\n');
    const jobId = await submit(net, { 'train.py': script, 'data/input.txt': 'input\n' }, { entry: 'train.py', outputs: ['outputs/**'] });
    const events = await follow(net, jobId);
    assert.equal(finalStatus(events).status, 'succeeded');
    const arts = events.flatMap((e) => (e.body.type === 'artifact' ? [e.body.artifact] : []));
    assert.deepEqual(
      arts.map((a) => a.path),
      ['outputs/ckpt/.meta', 'outputs/model.bin'],
    );
    const model = Buffer.concat(Array.from({ length: 40000 }, () => Buffer.from(Array.from({ length: 256 }, (_, i) => i))));
    const a = arts.find((x) => x.path === 'outputs/model.bin')!;
    assert.equal(a.sha256, createHash('sha256').update(model).digest('hex'));
    const res = await net.client.getBlob(a.sha256);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(model));
    assert.deepEqual(
      (await net.client.artifacts(jobId)).map((x) => x.path).sort(),
      ['outputs/ckpt/.meta', 'outputs/model.bin'],
    );
  });

  it('turns growing tfevents files into exactly the scalars written (the fixtures replayed by a script)', async () => {
    // The job copies real writers' event files into its logdir a few hundred bytes at a time, so
    // the tailer meets half-written records, as it does with a live SummaryWriter.
    const files: Record<string, Buffer | string> = {};
    const list: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.includes('tfevents')) {
          const rel = relative(TFEVENTS, p).split('\\').join('/');
          files[`src/${rel}`] = readFileSync(p);
          list.push(rel);
        }
      }
    };
    walk(TFEVENTS);
    files['replay.py'] = [
      'import json, os, sys, time',
      `files = ${JSON.stringify(list)}`,
      'data = {f: open("src/" + f, "rb").read() for f in files}',
      'pos = {f: 0 for f in files}',
      'logdir = os.environ["HEARTH_LOGDIR"]',
      'while any(pos[f] < len(data[f]) for f in files):',
      '    for f in files:',
      '        if pos[f] >= len(data[f]): continue',
      '        dest = os.path.join(logdir, f)',
      '        os.makedirs(os.path.dirname(dest), exist_ok=True)',
      '        with open(dest, "ab") as out:',
      '            out.write(data[f][pos[f]:pos[f] + 997])',
      '        pos[f] += 997',
      '    time.sleep(0.01)',
      'print("done")',
    ].join('\n');
    const jobId = await submit(net, files, { entry: 'replay.py' });
    const events = await follow(net, jobId);
    assert.equal(finalStatus(events).status, 'succeeded');
    const points: ScalarPoint[] = events.flatMap((e) => (e.body.type === 'scalars' ? e.body.points : []));
    const truth = JSON.parse(readFileSync(join(TFEVENTS, 'truth.json'), 'utf8')) as ScalarTable;
    const got = scalarTable(points);
    const diff = Object.keys({ ...truth, ...got }).flatMap((run) =>
      Object.keys({ ...truth[run], ...got[run] }).flatMap((tag) => {
        const a = JSON.stringify(got[run]?.[tag] ?? null);
        const b = JSON.stringify(truth[run]?.[tag] ?? null);
        return a === b ? [] : [`${run} ${tag}: got ${got[run]?.[tag]?.length ?? 'none'} points, want ${truth[run]?.[tag]?.length ?? 'none'}`];
      }),
    );
    assert.deepEqual(diff, [], `scalars differ; notices: ${JSON.stringify(events.filter((e) => e.body.type === 'notice').map((e) => e.body))}`);
    assert.ok(!events.some((e) => e.body.type === 'notice' && e.body.level !== 'info'), 'no warnings');
    assert.ok(events.some((e) => e.body.type === 'telemetry'), 'CPU telemetry was sent while it ran');
  });

  it('cancel kills the whole process group (grandchildren too) and still uploads what the job wrote', async () => {
    const script = [
      'import os, signal, subprocess, sys, time',
      'signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stubborn: only SIGKILL stops it',
      'os.makedirs("outputs", exist_ok=True)',
      'open("outputs/partial.bin", "wb").write(b"half a model" * 1000)',
      'child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])',
      'print("pids", os.getpid(), child.pid, flush=True)',
      'while True: time.sleep(1)',
    ].join('\n');
    const jobId = await submit(net, { 'stubborn.py': script }, { entry: 'stubborn.py', outputs: ['outputs/*'] });
    let pids: number[] = [];
    const done = follow(net, jobId, (e) => {
      if (e.body.type === 'log') {
        const m = /pids (\d+) (\d+)/.exec(e.body.data);
        if (m) pids = [Number(m[1]), Number(m[2])];
      }
    });
    await waitFor(() => pids.length === 2, 'the job to print its pids');
    const hostPids = jobProcesses(jobId);
    assert.ok(hostPids.length >= 2, `found the job and its child: ${hostPids.join(' ')}`);
    await net.client.cancelJob(jobId);
    const events = await done;
    const st = finalStatus(events);
    assert.equal(st.status, 'cancelled');
    assert.equal(st.signal, 'SIGKILL');
    for (const pid of hostPids) assert.equal(isAlive(pid), false, `pid ${pid} survived the cancel`);
    assert.deepEqual(jobProcesses(jobId), []);
    const arts = events.flatMap((e) => (e.body.type === 'artifact' ? [e.body.artifact] : []));
    assert.deepEqual(arts.map((a) => a.path), ['outputs/partial.bin']);
    const body = Buffer.from(await (await net.client.getBlob(arts[0]!.sha256)).arrayBuffer());
    assert.ok(body.equals(Buffer.from('half a model'.repeat(1000))));
    assert.ok(net.workerLog.some((l) => l.includes('ignored SIGTERM')));
  });

  it('a job that exits on SIGTERM ends cancelled at once with its outputs; a missing entry fails cleanly', async () => {
    const script = ['import os, time', 'os.makedirs("out", exist_ok=True)', 'open("out/x.txt", "w").write("x")', 'print("ready", flush=True)', 'time.sleep(600)'].join('\n');
    const jobId = await submit(net, { 'a.py': script }, { entry: 'a.py', outputs: ['out'] });
    let ready = false;
    const done = follow(net, jobId, (e) => {
      if (e.body.type === 'log' && e.body.data.includes('ready')) ready = true;
    });
    await waitFor(() => ready, 'the job to start');
    await net.client.cancelJob(jobId);
    const events = await done;
    const st = finalStatus(events);
    assert.equal(st.status, 'cancelled');
    assert.equal(st.signal, 'SIGTERM');
    assert.deepEqual(events.flatMap((e) => (e.body.type === 'artifact' ? [e.body.artifact.path] : [])), ['out/x.txt']);

    const bad = await submit(net, { 'a.py': 'print(1)' }, { entry: 'missing.py' });
    const badEvents = await follow(net, bad);
    const bst = finalStatus(badEvents);
    assert.equal(bst.status, 'failed');
    assert.equal(bst.exitCode, 2);
    assert.match(logOf(badEvents, 'stderr'), /can't open file/);
  });
});
