// Jobs under the bubblewrap sandbox, for real: real bwrap, real python3, a real broker and worker.
// A job must not see the worker's tokens, its work dir or $HOME, must not write outside its
// folder, and must still write outputs, be cancellable, report its signals, and run a pyenv python.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { BrokerClient } from '../../src/client/api';
import { startBroker, type RunningBroker } from '../../src/broker/server';
import type { JobEvent } from '../../src/shared/protocol';
import { startWorker, type RunningWorker, type WorkerOptions } from '../../src/worker/main';
import { bwrapArgs } from '../../src/worker/sandbox';
import { hearth, spawnHearth, stopProcess, waitForOutput } from './helpers';
import { isAlive, jobProcesses } from './job-processes';
import { artifactPaths, finalStatus, follow, logOf, submit, waitFor } from './in-process-jobs';
import { backendFor } from '../backend';

const TEST_TMP = join(__dirname, '..', '..', '.test-tmp');
const SECRET = 'TOP-SECRET-' + Math.random().toString(36).slice(2);

interface Net {
  dir: string;
  dataDir: string;
  home: string;
  broker: RunningBroker;
  client: BrokerClient;
  worker: RunningWorker;
  workerLog: string[];
  workDir: string;
  leaseId?: string;
}

/**
 * The layout of `hearth up`: the worker's work dir inside a data dir that holds the tokens. $HOME
 * is a temporary folder with a secret of its own (the worker reads HOME when it starts).
 */
async function startNet(opts: Partial<WorkerOptions> & { realHome?: boolean } = {}): Promise<Net> {
  // Not under /tmp: the sandbox's own tmpfs over /tmp would hide it whether the rest works or not.
  mkdirSync(TEST_TMP, { recursive: true });
  const dir = mkdtempSync(join(TEST_TMP, 'hearth-sandbox-it-'));
  const dataDir = join(dir, 'data');
  const home = join(dir, 'home');
  mkdirSync(join(home, '.ssh'), { recursive: true });
  writeFileSync(join(home, '.ssh', 'id_ed25519'), SECRET);
  const broker = await startBroker({ ...(await backendFor(dataDir)), dataDir, port: 0, heartbeatMs: 500 });
  const client = new BrokerClient({ url: broker.url, token: broker.adminToken! });
  const { token } = await client.createToken('worker', 'test worker');
  writeFileSync(join(dataDir, 'worker-token'), token);
  writeFileSync(join(dataDir, 'config.json'), JSON.stringify({ token: SECRET }));
  const workerLog: string[] = [];
  const workDir = join(dataDir, 'worker');
  const oldHome = process.env.HOME;
  if (!opts.realHome) process.env.HOME = home;
  let worker: RunningWorker;
  try {
    worker = startWorker({
      brokerUrl: broker.url,
      token,
      workDir,
      hidePaths: [dataDir],
      name: 'sandbox-worker',
      nvidiaSmi: join(dir, 'no-nvidia-smi'),
      killGraceMs: 1500,
      telemetryMs: 300,
      sandbox: 'bwrap',
      python: '/usr/bin/python3',
      log: (level, msg, fields) => workerLog.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`),
      ...opts,
    });
    await worker.workerId;
  } finally {
    process.env.HOME = oldHome;
  }
  return { dir, dataDir, home, broker, client, worker, workerLog, workDir };
}

async function stopNet(net: Net): Promise<void> {
  await net.worker.stop();
  await net.broker.close();
  rmSync(net.dir, { recursive: true, force: true });
}

/** A script that tries to read each path and prints one JSON line {path: "read: ..." | "ErrorName"}. */
function readProbe(paths: string[]): string {
  return [
    'import json',
    `paths = ${JSON.stringify(paths)}`,
    'out = {}',
    'for p in paths:',
    '    try:',
    '        out[p] = "read: " + open(p).read()',
    '    except OSError as e:',
    '        out[p] = type(e).__name__',
    'print("PROBE " + json.dumps(out), flush=True)',
  ].join('\n');
}
const probeResult = (events: JobEvent[]) => {
  const line = logOf(events, 'stdout').split('\n').find((l) => l.startsWith('PROBE '));
  assert.ok(line, `the probe printed its result; stderr: ${logOf(events, 'stderr')}`);
  return JSON.parse(line.slice(6)) as Record<string, string>;
};

describe('worker: jobs in the bubblewrap sandbox', function () {
  this.timeout(120_000);
  before(function () {
    try {
      execFileSync('bwrap', ['--ro-bind', '/', '/', 'true']);
    } catch {
      // scripts/setup.sh installs bubblewrap; a machine without it cannot run these.
      this.skip();
    }
  });

  describe('with a worker that requires the sandbox', () => {
    let net: Net;
    before(async () => (net = await startNet()));
    after(async () => stopNet(net));

    it('hides the tokens, the config, worker.json, the blob cache, other jobs and $HOME; the job gets FileNotFoundError', async () => {
      const first = await submit(net, { 'a.py': 'print("first")' }, { entry: 'a.py' });
      assert.equal(finalStatus(await follow(net, first)).status, 'succeeded');
      const blob = createHash('sha256').update('print("first")').digest('hex');
      const secrets = [
        join(net.dataDir, 'admin-token'),
        join(net.dataDir, 'worker-token'),
        join(net.dataDir, 'config.json'),
        join(net.workDir, 'worker.json'),
        join(net.workDir, 'blobs', blob.slice(0, 2), blob),
        join(net.workDir, 'jobs', first, 'a.py'),
        join(net.home, '.ssh', 'id_ed25519'),
      ];
      // They are all there, out here.
      for (const p of secrets) assert.ok(existsSync(p), p);
      assert.ok(readFileSync(join(net.workDir, 'worker.json'), 'utf8').includes('workerId'));
      const jobId = await submit(net, { 'probe.py': readProbe(secrets) }, { entry: 'probe.py' });
      const events = await follow(net, jobId);
      assert.equal(finalStatus(events).status, 'succeeded', logOf(events, 'stderr'));
      const got = probeResult(events);
      for (const p of secrets) assert.equal(got[p], 'FileNotFoundError', `${p}: ${got[p]}`);
      assert.ok(!logOf(events, 'stdout').includes(SECRET));
      assert.ok(!logOf(events, 'stdout').includes(net.broker.adminToken!));
      assert.ok(net.workerLog.some((l) => l.includes('jobs run sandboxed under bubblewrap')));
    });

    it('has no capabilities: as root too it cannot unmount the tmpfs over the tokens', async () => {
      const token = join(net.dataDir, 'admin-token');
      const script = [
        'import subprocess',
        'cap = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff:")][0]',
        `r = subprocess.run(["umount", ${JSON.stringify(net.dataDir)}], capture_output=True, text=True)`,
        'print("CAP", cap, "UMOUNT", r.returncode, r.stderr.strip(), flush=True)',
        readProbe([token]),
      ].join('\n');
      const jobId = await submit(net, { 'u.py': script }, { entry: 'u.py' });
      const events = await follow(net, jobId);
      assert.equal(finalStatus(events).status, 'succeeded', logOf(events, 'stderr'));
      assert.match(logOf(events, 'stdout'), /CAP 0000000000000000 UMOUNT [1-9]/);
      assert.equal(probeResult(events)[token], 'FileNotFoundError');
    });

    it('cannot write outside its folder, can write its outputs, which come back as artifacts', async () => {
      const script = [
        'import json, os',
        `targets = ${JSON.stringify(['/etc/hearth-sandbox-test', join(net.dataDir, 'planted'), join(net.workDir, 'planted'), '/tmp/hearth-sandbox-planted', '/work/hearth-sandbox-planted'])}`,
        'res = {}',
        'for t in targets:',
        '    try:',
        '        open(t, "w").write("x"); res[t] = "wrote"',
        '    except OSError as e:',
        '        res[t] = type(e).__name__ + ": " + str(e)',
        'os.makedirs("outputs", exist_ok=True)',
        'open("outputs/model.bin", "wb").write(b"weights" * 1000)',
        'print("WRITES " + json.dumps(res), flush=True)',
        'print("cwd", os.getcwd(), os.environ["HEARTH_LOGDIR"])',
      ].join('\n');
      const jobId = await submit(net, { 'w.py': script }, { entry: 'w.py', outputs: ['outputs/**'] });
      const events = await follow(net, jobId);
      assert.equal(finalStatus(events).status, 'succeeded', logOf(events, 'stderr'));
      const line = logOf(events, 'stdout').split('\n').find((l) => l.startsWith('WRITES '))!;
      const res = JSON.parse(line.slice(7)) as Record<string, string>;
      assert.match(res['/etc/hearth-sandbox-test']!, /Read-only file system/);
      assert.match(res['/work/hearth-sandbox-planted']!, /Read-only file system/);
      // The hidden folders and /tmp are throw-away tmpfs inside: a write may succeed there, but
      // nothing reaches the real folder.
      for (const t of [join(net.dataDir, 'planted'), join(net.workDir, 'planted'), '/tmp/hearth-sandbox-planted', '/etc/hearth-sandbox-test', '/work/hearth-sandbox-planted']) {
        assert.ok(!existsSync(t), `${t} appeared on the host`);
      }
      const ws = join(net.workDir, 'jobs', jobId);
      assert.match(logOf(events, 'stdout'), new RegExp(`cwd ${ws} ${ws}/runs`));
      assert.deepEqual(artifactPaths(events), ['outputs/model.bin']);
      const a = events.flatMap((e) => (e.body.type === 'artifact' ? [e.body.artifact] : []))[0]!;
      assert.ok(Buffer.from(await (await net.client.getBlob(a.sha256)).arrayBuffer()).equals(Buffer.from('weights'.repeat(1000))));
    });

    it('reports exit codes, and a signal that killed the job as that signal', async () => {
      const a = await submit(net, { 'a.py': 'import sys\nsys.exit(3)' }, { entry: 'a.py' });
      const sa = finalStatus(await follow(net, a));
      assert.equal(sa.status, 'failed');
      assert.equal(sa.exitCode, 3);
      const b = await submit(net, { 'b.py': 'import os, signal\nprint("dying", flush=True)\nos.kill(os.getpid(), signal.SIGKILL)' }, { entry: 'b.py' });
      const eb = await follow(net, b);
      const sb = finalStatus(eb);
      assert.equal(sb.status, 'failed');
      assert.equal(sb.signal, 'SIGKILL');
      assert.equal(sb.exitCode ?? null, null);
      assert.equal(sb.reason, 'killed by SIGKILL');
      assert.match(logOf(eb, 'stdout'), /dying/);
    });

    it('cancel: SIGTERM reaches the job (it saves a checkpoint), and every process of it is gone after', async () => {
      const script = [
        'import os, signal, subprocess, sys, time',
        'def on_term(*_):',
        '    os.makedirs("outputs", exist_ok=True)',
        '    open("outputs/ckpt.pt", "w").write("saved on SIGTERM")',
        '    sys.exit(0)',
        'signal.signal(signal.SIGTERM, on_term)',
        // A grandchild in the job's group, and one that escapes it with its own session.
        'subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])',
        'subprocess.Popen([sys.executable, "-c", "import os, time; os.setsid(); time.sleep(600)"])',
        'time.sleep(0.5)',
        'print("ready", flush=True)',
        'while True: time.sleep(1)',
      ].join('\n');
      const jobId = await submit(net, { 'c.py': script }, { entry: 'c.py', outputs: ['outputs/*'] });
      let ready = false;
      const done = follow(net, jobId, (e) => {
        if (e.body.type === 'log' && e.body.data.includes('ready')) ready = true;
      });
      await waitFor(() => ready, 'the job to start');
      const pids = jobProcesses(jobId);
      // bwrap, the namespace's init, the job and its two children.
      assert.ok(pids.length >= 5, `found ${pids.join(' ')}`);
      await net.client.cancelJob(jobId);
      const events = await done;
      const st = finalStatus(events);
      assert.equal(st.status, 'cancelled');
      assert.equal(st.exitCode, 0, 'the job exited on its own SIGTERM handler');
      assert.deepEqual(artifactPaths(events), ['outputs/ckpt.pt']);
      await waitFor(() => !pids.some(isAlive), 'every process of the job to be gone', 10_000);
      assert.deepEqual(jobProcesses(jobId), []);
    });

    it('cancel: a job ignoring SIGTERM is SIGKILLed with its grandchildren, and says so', async () => {
      const script = [
        'import os, signal, subprocess, sys, time',
        'signal.signal(signal.SIGTERM, signal.SIG_IGN)',
        'subprocess.Popen([sys.executable, "-c", "import os, signal, time; os.setsid(); signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])',
        'time.sleep(0.5)',
        'print("ready", flush=True)',
        'while True: time.sleep(1)',
      ].join('\n');
      const jobId = await submit(net, { 's.py': script }, { entry: 's.py' });
      let ready = false;
      const done = follow(net, jobId, (e) => {
        if (e.body.type === 'log' && e.body.data.includes('ready')) ready = true;
      });
      await waitFor(() => ready, 'the job to start');
      const pids = jobProcesses(jobId);
      assert.ok(pids.length >= 4, `found ${pids.join(' ')}`);
      await net.client.cancelJob(jobId);
      const st = finalStatus(await done);
      assert.equal(st.status, 'cancelled');
      assert.equal(st.signal, 'SIGKILL');
      await waitFor(() => !pids.some(isAlive), 'every process of the job to be gone', 10_000);
      assert.ok(net.workerLog.some((l) => l.includes('ignored SIGTERM')));
    });
  });

  it('passes the GPU device nodes through: a job can open /dev/nvidia* and /dev/dri, nothing else of the host /dev', async function () {
    // No GPU here: character devices made with mknod stand in for the driver's nodes (root only).
    if (process.getuid?.() !== 0) this.skip();
    mkdirSync(TEST_TMP, { recursive: true });
    const dir = mkdtempSync(join(TEST_TMP, 'hearth-sandbox-dev-'));
    try {
      const dev = join(dir, 'dev');
      mkdirSync(join(dev, 'nvidia-caps'), { recursive: true });
      mkdirSync(join(dev, 'dri'));
      execFileSync('mknod', [join(dev, 'nvidia0'), 'c', '1', '3']); // /dev/null's numbers
      execFileSync('mknod', [join(dev, 'nvidiactl'), 'c', '1', '5']); // /dev/zero's
      execFileSync('mknod', [join(dev, 'dri', 'card0'), 'c', '1', '3']);
      execFileSync('mknod', [join(dev, 'sda'), 'c', '1', '3']);
      const ws = join(dir, 'ws');
      mkdirSync(ws);
      const script = [
        'import os, stat',
        'open("/dev/nvidia0", "wb").write(b"x")',
        'print("nvidiactl", open("/dev/nvidiactl", "rb").read(4).hex())',
        'print("chr", all(stat.S_ISCHR(os.stat(p).st_mode) for p in ["/dev/nvidia0", "/dev/nvidiactl", "/dev/dri/card0"]))',
        'print("caps", os.path.isdir("/dev/nvidia-caps"), "sda", os.path.exists("/dev/sda"))',
      ].join('\n');
      const args = bwrapArgs({ workspace: ws, hide: [], python: { executable: '/usr/bin/python3', needs: [] }, command: ['/usr/bin/python3', '-c', script], devDir: dev });
      const out = execFileSync('bwrap', args, { encoding: 'utf8' });
      assert.equal(out, 'nvidiactl 00000000\nchr True\ncaps True sda False\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs the pyenv python3 found on PATH although $HOME (where it lives) is hidden', async function () {
    const real = execFileSync('python3', ['-c', 'import sys; print(sys.prefix)'], { encoding: 'utf8' }).trim();
    const home = os.homedir();
    if (!real.startsWith(home + '/')) this.skip(); // only meaningful where python3 lives under $HOME
    const net = await startNet({ realHome: true, python: 'python3' });
    try {
      const visibleOutside = ['.bashrc', '.profile', '.gitconfig'].map((f) => join(home, f)).filter(existsSync);
      assert.ok(visibleOutside.length > 0);
      const script = readProbe(visibleOutside) + '\nimport sys\nprint("prefix", sys.prefix)';
      const jobId = await submit(net, { 'p.py': script }, { entry: 'p.py' });
      const events = await follow(net, jobId);
      assert.equal(finalStatus(events).status, 'succeeded', logOf(events, 'stderr'));
      assert.match(logOf(events, 'stdout'), new RegExp(`prefix ${real}\n`));
      const got = probeResult(events);
      for (const p of visibleOutside) assert.equal(got[p], 'FileNotFoundError', p);
    } finally {
      await stopNet(net);
    }
  });

  it('hearth up (built CLI): --sandbox bwrap hides its data dir and --hide folders; --sandbox none does not', async () => {
    mkdirSync(TEST_TMP, { recursive: true });
    const dir = mkdtempSync(join(TEST_TMP, 'hearth-sandbox-up-'));
    try {
      const extra = join(dir, 'broker-elsewhere');
      mkdirSync(extra);
      writeFileSync(join(extra, 'admin-token'), SECRET);
      const ws = join(dir, 'ws');
      mkdirSync(ws);
      for (const mode of ['bwrap', 'none']) {
        const dataDir = join(dir, `data-${mode}`);
        const secrets = [join(dataDir, 'admin-token'), join(dataDir, 'worker-token'), join(dataDir, 'config.json'), join(extra, 'admin-token')];
        writeFileSync(join(ws, 'peek.py'), readProbe(secrets));
        const up = spawnHearth(['--data-dir', dataDir, 'up', '--port', '0', '--sandbox', mode, '--hide', extra]);
        try {
          await waitForOutput(up, /Hearth is up at/);
          const cfg = JSON.parse(readFileSync(join(dataDir, 'config.json'), 'utf8')) as { brokerUrl: string; token: string };
          const r = await hearth(['run', join(ws, 'peek.py')], { HEARTH_BROKER_URL: cfg.brokerUrl, HEARTH_TOKEN: cfg.token, HEARTH_DATA_DIR: join(dir, 'cli') });
          if (mode === 'none' && process.getuid?.() === 0) {
            // As root, --sandbox none does not run jobs at all (they would run as root).
            assert.notEqual(r.code, 0);
            assert.match(r.stderr, /run as root runs jobs only in the sandbox/);
            assert.ok(!r.stdout.includes('PROBE '));
            continue;
          }
          assert.equal(r.code, 0, r.stderr);
          const line = r.stdout.split('\n').find((l) => l.startsWith('PROBE '))!;
          const got = JSON.parse(line.slice(6)) as Record<string, string>;
          for (const p of secrets) {
            if (mode === 'bwrap') assert.equal(got[p], 'FileNotFoundError', `${p}: ${got[p]}`);
            else assert.match(got[p]!, /^read: /, p);
          }
        } finally {
          await stopProcess(up, 'SIGINT');
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('auto without a working bwrap runs jobs unsandboxed, with one clear warning; bwrap required fails them', async function () {
    // A root worker never runs jobs unsandboxed (sandbox-attacks.test.ts): this is an ordinary user's.
    if (process.getuid?.() === 0) this.skip();
    const auto = await startNet({ sandbox: 'auto', bwrapPath: '/nonexistent/bwrap' });
    try {
      const warnings = auto.workerLog.filter((l) => l.startsWith('warn ') && l.includes('UNSANDBOXED'));
      assert.equal(warnings.length, 1, auto.workerLog.join('\n'));
      assert.match(warnings[0]!, /bubblewrap/);
      const jobId = await submit(auto, { 'r.py': readProbe([join(auto.dataDir, 'config.json')]) }, { entry: 'r.py' });
      const events = await follow(auto, jobId);
      assert.equal(finalStatus(events).status, 'succeeded');
      // The fallback is real: without the sandbox the job sees what it otherwise could not.
      assert.match(probeResult(events)[join(auto.dataDir, 'config.json')]!, /^read: .*TOP-SECRET/);
    } finally {
      await stopNet(auto);
    }
    const required = await startNet({ sandbox: 'bwrap', bwrapPath: '/nonexistent/bwrap' });
    try {
      const jobId = await submit(required, { 'r.py': 'open("/tmp/ran", "w").write("x")\nprint("ran")' }, { entry: 'r.py' });
      const events = await follow(required, jobId);
      const st = finalStatus(events);
      assert.equal(st.status, 'failed');
      assert.match(String(st.reason), /requires a sandbox \(--sandbox bwrap\) but bubblewrap \(\/nonexistent\/bwrap\) does not work here/);
      assert.ok(!logOf(events, 'stdout').includes('ran'), 'the job never ran');
    } finally {
      await stopNet(required);
    }
  });
});
