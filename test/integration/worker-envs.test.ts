// Python environments on the worker, for real: real venvs, real pip, a wheelhouse built here from
// a tiny local package, a real broker and worker, real bubblewrap.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BrokerClient } from '../../src/client/api';
import { startBroker, type RunningBroker } from '../../src/broker/server';
import { uploadWorkspace } from '../../src/client/workspace';
import { startWorker, type RunningWorker, type WorkerOptions } from '../../src/worker/main';
import type { JobEvent } from '../../src/shared/protocol';
import { hearth, spawnHearth, startBrokerProc, stopProcess, waitFor, waitForOutput, type BrokerProc } from './helpers';
import { finalStatus, follow, logOf, submit } from './in-process-jobs';
import { buildWheel, makeVenv } from './wheelhouse';

// Not under /tmp: the sandbox's own tmpfs over /tmp would hide it.
const TEST_TMP = join(__dirname, '..', '..', '.test-tmp');

interface Net {
  dir: string;
  broker: RunningBroker;
  client: BrokerClient;
  worker: RunningWorker;
  workerLog: string[];
  leaseId?: string;
}

async function startNet(dir: string, opts: Partial<WorkerOptions>): Promise<Net> {
  const dataDir = join(dir, 'data');
  const broker = await startBroker({ dataDir, port: 0, heartbeatMs: 500 });
  const client = new BrokerClient({ url: broker.url, token: broker.adminToken! });
  const { token } = await client.createToken('worker', 'test worker');
  const workerLog: string[] = [];
  const worker = startWorker({
    brokerUrl: broker.url,
    token,
    workDir: join(dataDir, 'worker'),
    hidePaths: [dataDir],
    name: 'envs-worker',
    nvidiaSmi: join(dir, 'no-nvidia-smi'),
    killGraceMs: 1500,
    log: (level, msg, fields) => workerLog.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`),
    ...opts,
  });
  await worker.workerId;
  return { dir, broker, client, worker, workerLog };
}

async function stopNet(net: Net): Promise<void> {
  await net.worker.stop();
  await net.broker.close();
}

/** the environments' folders under a worker's work dir (each has its marker <key>.ready beside it) */
const envDirs = (workDir: string) => readdirSync(join(workDir, 'envs')).filter((n) => !n.endsWith('.ready'));

describe('worker: a provider\'s virtual environment as --python, under the default sandbox', function () {
  this.timeout(180_000);
  let dir: string;
  let wheel: string;

  before(() => {
    mkdirSync(TEST_TMP, { recursive: true });
    dir = mkdtempSync(join(TEST_TMP, 'hearth-envs-'));
    wheel = buildWheel(dir, join(dir, 'wheelhouse'), 'hearthtiny', '1.2.3', 'tiny from the provider venv');
    buildWheel(dir, join(dir, 'wheelhouse'), 'hearthtwo', '0.1.0', 'two');
    // The job user (nobody, under a root worker) reads the wheelhouse through these folders.
    chmodSync(dir, 0o755);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const systemSitePackages of [false, true]) {
    it(`runs VENV/bin/python itself, so the venv's packages import (venv ${systemSitePackages ? 'with' : 'without'} system site-packages)`, async () => {
      const venv = join(dir, `provider-venv-${systemSitePackages ? 'sys' : 'plain'}`);
      const python = makeVenv(venv, wheel, { systemSitePackages });
      const net = await startNet(mkdtempSync(join(dir, 'net-')), { python });
      try {
        // The finding was under the default sandbox: make sure this one is sandboxed.
        assert.ok(net.workerLog.some((l) => l.includes('jobs run sandboxed under bubblewrap')), net.workerLog.join('\n'));
        const script = 'import sys, hearthtiny\nprint("VALUE", hearthtiny.VALUE)\nprint("PREFIX", sys.prefix)';
        const jobId = await submit(net, { 'p.py': script }, { entry: 'p.py' });
        const events = await follow(net, jobId);
        assert.equal(finalStatus(events).status, 'succeeded', logOf(events, 'stderr'));
        const out = logOf(events, 'stdout');
        assert.match(out, /^VALUE tiny from the provider venv$/m);
        assert.match(out, new RegExp(`^PREFIX ${venv}$`, 'm'));

        // With requirements: an environment on the provider's venv sees what it sees (hearthtiny)
        // and what was installed (hearthtwo); a venv with neither pip nor system site-packages
        // cannot install, and says so.
        const saved = { PIP_NO_INDEX: process.env.PIP_NO_INDEX, PIP_FIND_LINKS: process.env.PIP_FIND_LINKS };
        Object.assign(process.env, { PIP_NO_INDEX: '1', PIP_FIND_LINKS: join(dir, 'wheelhouse') });
        try {
          const both = 'import hearthtiny, hearthtwo\nprint("BOTH", hearthtiny.VALUE, hearthtwo.VALUE)';
          // hearthtiny>=1.0 is the provider's already (as torch>=2.6 was in the finding): not installed again.
          const withReq = await submit(net, { 'p.py': both, 'requirements.txt': 'hearthtwo\nhearthtiny>=1.0\n' }, { entry: 'p.py' });
          const ev = await follow(net, withReq);
          if (systemSitePackages) {
            assert.equal(finalStatus(ev).status, 'succeeded', logOf(ev, 'stderr'));
            assert.match(logOf(ev, 'stdout'), /^BOTH tiny from the provider venv two$/m);
            assert.match(logOf(ev, 'stdout'), /Requirement already satisfied: hearthtiny>=1\.0/);
            assert.match(logOf(ev, 'stdout'), /^Successfully installed hearthtwo-0\.1\.0$/m);
          } else {
            assert.equal(finalStatus(ev).status, 'failed');
            assert.match(finalStatus(ev).reason ?? '', /the worker's Python has no pip/);
          }
        } finally {
          for (const [k, v] of Object.entries(saved)) {
            if (v === undefined) delete process.env[k];
            else process.env[k] = v;
          }
        }
        if (!systemSitePackages) return;
        // A kernel too runs in the venv (jupyter_client would take Debian's "python3" kernelspec,
        // /usr/bin/python3, over the bridge's own interpreter).
        const k = await net.client.startKernel({ leaseId: net.leaseId! });
        const kevents: JobEvent[] = [];
        const ac = new AbortController();
        const following = (async () => {
          try {
            for await (const e of net.client.events(k.id, { follow: true, signal: ac.signal })) kevents.push(e);
          } catch {
            /* aborted */
          }
        })();
        try {
          const { requestId } = await net.client.kernelRequest(k.id, { type: 'execute', code: 'import sys, hearthtiny; print(hearthtiny.VALUE, sys.prefix)' });
          await waitFor('the reply', () => (kevents.some((e) => e.body.type === 'kernel' && e.body.requestId === requestId && e.body.msgType === 'execute_reply') ? true : undefined), 120_000, 25);
          const text = kevents.flatMap((e) => (e.body.type === 'kernel' && e.body.requestId === requestId && e.body.msgType === 'stream' ? [String(e.body.content.text)] : [])).join('');
          assert.equal(text, `tiny from the provider venv ${venv}\n`);
        } finally {
          await net.client.cancelJob(k.id).catch(() => undefined);
          ac.abort();
          await following;
        }
      } finally {
        await stopNet(net);
      }
    });
  }
});

describe('packages: a run\'s requirements installed by the worker (real pip, real venvs, real worker and broker)', function () {
  this.timeout(300_000);
  let dir: string;
  let wheelhouse: string;
  let broker: BrokerProc;
  let worker: ReturnType<typeof spawnHearth>;
  let workDir: string;
  let cli: Record<string, string>;
  let n = 0;

  /** A project folder with these files (its .hearthignore marks it the project's root, which
   * `hearth run` would otherwise look for above it: here, the repository holding .test-tmp). */
  const project = (files: Record<string, string>): string => {
    const ws = join(dir, `project-${++n}`);
    for (const [rel, text] of Object.entries({ '.hearthignore': '', ...files })) {
      mkdirSync(join(ws, rel, '..'), { recursive: true });
      writeFileSync(join(ws, rel), text);
    }
    return ws;
  };
  const admin = () => new BrokerClient({ url: broker.url, token: broker.adminToken });
  const eventsOf = async (stderr: string): Promise<JobEvent[]> => {
    const jobId = stderr.split('\n')[0]!.trim();
    const out: JobEvent[] = [];
    for await (const e of admin().events(jobId, { follow: false })) out.push(e);
    return out;
  };
  const setups = (events: JobEvent[]) => events.flatMap((e) => (e.body.type === 'setup' ? [e.body] : []));

  before(async () => {
    mkdirSync(TEST_TMP, { recursive: true });
    dir = mkdtempSync(join(TEST_TMP, 'hearth-pkgs-'));
    // The job user (nobody, under a root worker) reads the wheelhouse through these folders.
    chmodSync(dir, 0o755);
    wheelhouse = join(dir, 'wheelhouse');
    buildWheel(dir, wheelhouse, 'hearthtiny', '1.2.3', 'tiny from the wheelhouse');
    buildWheel(dir, wheelhouse, 'hearthtwo', '0.1.0', 'two from the wheelhouse');
    const dataDir = join(dir, 'broker');
    mkdirSync(dataDir);
    broker = await startBrokerProc(dataDir);
    const { token } = await admin().createToken('worker', 'envs');
    workDir = join(dir, 'worker');
    // The provider's pip configuration, as pip itself reads it: no index, the wheelhouse as links.
    worker = spawnHearth(
      ['--broker', broker.url, 'worker', '--work-dir', workDir, '--name', 'envs', '--python', '/usr/bin/python3', '--nvidia-smi', join(dir, 'none'), '--kill-grace', '2'],
      // No build isolation: an sdist builds with the setuptools already here (there is no index).
      { HEARTH_TOKEN: token, PIP_NO_INDEX: '1', PIP_FIND_LINKS: wheelhouse, PIP_RETRIES: '0', PIP_NO_BUILD_ISOLATION: '0' },
    );
    await waitForOutput(worker, /connected to the broker/);
    cli = { HEARTH_BROKER_URL: broker.url, HEARTH_TOKEN: broker.adminToken, HEARTH_DATA_DIR: join(dir, 'cli') };
  });
  after(async () => {
    if (worker) await stopProcess(worker);
    if (broker) await stopProcess(broker.proc);
    rmSync(dir, { recursive: true, force: true });
  });

  const importing = 'import hearthtiny\nprint("VALUE", hearthtiny.VALUE)\n';

  it('hearth gpus says what the worker has: Python, PyTorch, driver (none here), free disk', async () => {
    const json = await hearth(['gpus', '--json'], cli);
    assert.equal(json.code, 0, json.stderr);
    const [offer] = JSON.parse(json.stdout) as { stack: { python: string; torch: string | null; driver: string | null; diskFreeBytes: number } }[];
    assert.match(offer!.stack.python, /^3\.\d+\.\d+$/);
    assert.equal(offer!.stack.driver, null);
    assert.ok(offer!.stack.diskFreeBytes > 0);
    const text = await hearth(['gpus'], cli);
    assert.match(text.stdout, /DRIVER\s+DISK FREE/);
    assert.match(text.stdout, /\d+(\.\d)? [KMGT]iB/);
  });

  it('the first run installs requirements.txt (pip\'s output in its log, "installing packages" said), the second reuses the environment', async () => {
    const first = await hearth(['run', join(project({ 'requirements.txt': 'hearthtiny==1.2.3\n', 'main.py': importing }), 'main.py')], cli);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /^hearth: installing packages \(requirements\.txt\)…$/m);
    // The summary says the run's time and, apart, the install's (issue 20, item 9).
    assert.match(first.stderr, /hearth: job_\w+ succeeded: \d+s run, \d+s installing packages · /);
    assert.match(first.stdout, /Successfully installed hearthtiny-1\.2\.3/);
    assert.match(first.stdout, /^VALUE tiny from the wheelhouse$/m);
    const e1 = await eventsOf(first.stderr);
    assert.deepEqual(setups(e1).map((s) => s.phase), ['installing', 'ready']);
    // pip's output comes before the job runs, in the same log.
    const running = e1.findIndex((e) => e.body.type === 'status' && e.body.status === 'running');
    const installed = e1.findIndex((e) => e.body.type === 'log' && e.body.data.includes('Successfully installed'));
    assert.ok(installed >= 0 && installed < running);

    const second = await hearth(['run', join(project({ 'requirements.txt': 'hearthtiny==1.2.3\n', 'main.py': importing }), 'main.py')], cli);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /^VALUE tiny from the wheelhouse$/m);
    assert.doesNotMatch(second.stderr, /installing packages/);
    assert.match(second.stderr, /hearth: job_\w+ succeeded in \d+s · /);
    assert.match(second.stderr, /packages of requirements\.txt already installed on this worker/);
    assert.doesNotMatch(second.stdout + second.stderr, /Collecting|Successfully installed|Looking in links/);
    assert.deepEqual(setups(await eventsOf(second.stderr)), [{ type: 'setup', phase: 'ready', source: 'requirements.txt', reused: true }]);
    assert.equal(envDirs(workDir).length, 1, 'one environment for both runs');
    // Owned by the worker's user once built (pip ran as the job user under a root worker).
    const env = join(workDir, 'envs', envDirs(workDir)[0]!);
    assert.equal(statSync(join(env, 'pyvenv.cfg')).uid, process.getuid!());
  });

  it('the environment is read-only to the job, and the provider\'s PIP_* settings and pip.conf do not reach it', async () => {
    const script = [
      importing,
      'import os, json',
      'print("PIPVARS", json.dumps(sorted(k for k in os.environ if k.startswith("PIP"))))',
      'import shutil, sys',
      'print("ACTIVATED", shutil.which("python") == sys.executable == os.path.join(os.environ["VIRTUAL_ENV"], "bin", "python"))',
      'try:',
      '    open(os.path.join(os.path.dirname(hearthtiny.__file__), "x"), "w")',
      '    print("ENV writable")',
      'except OSError as e:',
      '    print("ENV", type(e).__name__)',
      'for p in ["/etc/pip.conf", "/etc/xdg/pip/pip.conf"]:',
      '    try:',
      '        print("CONF", p, repr(open(p).read()))',
      '    except OSError as e:',
      '        print("CONF", p, type(e).__name__)',
    ].join('\n');
    const r = await hearth(['run', join(project({ 'requirements.txt': 'hearthtiny==1.2.3\n', 'main.py': script }), 'main.py')], cli);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^PIPVARS \[\]$/m);
    assert.match(r.stdout, /^ACTIVATED True$/m);
    assert.match(r.stdout, /^ENV (OSError|PermissionError)$/m);
    // Masked (a device node on a nodev mount: unreadable), or not there at all.
    const conf = r.stdout.split('\n').filter((l) => l.startsWith('CONF '));
    assert.equal(conf.length, 2, r.stdout);
    for (const line of conf) assert.match(line, / (PermissionError|FileNotFoundError)$/, line);
    if (existsSync('/etc/pip.conf')) assert.match(r.stdout, /^CONF \/etc\/pip\.conf PermissionError$/m);
  });

  it('a bad requirement fails the run with pip\'s reason naming it', async () => {
    const r = await hearth(['run', join(project({ 'requirements.txt': 'hearthtiny==1.2.3\nnosuchpkg-hearth==9.9\n', 'main.py': importing }), 'main.py')], cli);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /hearth: job failed: could not install the packages of requirements\.txt \(pip exited with code 1\): ERROR: Could not find a version that satisfies the requirement nosuchpkg-hearth==9\.9/);
    assert.match(r.stderr, /No matching distribution found for nosuchpkg-hearth==9\.9/);
    assert.doesNotMatch(r.stdout, /^VALUE/m, 'the job never ran');
    // No half-built environment is left to be reused.
    assert.equal(envDirs(workDir).length, 1);
  });

  it('a requirements file with a pip option line fails the run before pip runs, naming the line', async () => {
    const r = await hearth(['run', join(project({ 'requirements.txt': 'hearthtiny==1.2.3\n--no-binary :all:\n', 'main.py': importing }), 'main.py')], cli);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /hearth: job failed: requirements\.txt line 2: "--no-binary :all:" is a pip option; the worker refuses option lines/);
    assert.doesNotMatch(r.stderr + r.stdout, /installing packages|Collecting|Looking in links/, 'pip never ran');
    assert.doesNotMatch(r.stdout, /^VALUE/m, 'the job never ran');
  });

  it('pyproject.toml\'s dependencies, and --requirements naming another file', async () => {
    const pyproject = '[project]\nname = "demo"\nversion = "0"\ndependencies = ["hearthtwo==0.1.0"]\n';
    const a = await hearth(['run', join(project({ 'pyproject.toml': pyproject, 'main.py': 'import hearthtwo\nprint("TWO", hearthtwo.VALUE)' }), 'main.py')], cli);
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stdout, /^TWO two from the wheelhouse$/m);
    assert.match(a.stderr, /installing packages \(pyproject\.toml\)/);

    const ws = project({ 'requirements.txt': 'nosuchpkg-hearth\n', 'deps/run.txt': 'hearthtiny==1.2.3\nhearthtwo==0.1.0\n', 'main.py': importing + 'import hearthtwo\nprint("TWO", hearthtwo.VALUE)' });
    const b = await hearth(['run', join(ws, 'main.py'), '--requirements', join(ws, 'deps', 'run.txt')], cli);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stderr, /installing packages \(deps\/run\.txt\)/);
    assert.match(b.stdout, /^VALUE tiny from the wheelhouse$/m);
    const outside = await hearth(['run', join(ws, 'main.py'), '--requirements', join(dir, 'wheelhouse', '..', 'nowhere.txt')], cli);
    assert.equal(outside.code, 64, outside.stderr);
  });

  it('cancel during the install stops pip and everything it started, and leaves no environment', async () => {
    // An sdist whose setup.py never ends: pip is building it when the run is cancelled.
    const marker = `${100 + Math.floor(Math.random() * 800)}.${Date.now() % 100000}`;
    const src = join(dir, 'slow', 'hearthslow-1.0');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'setup.py'), `import os\nos.execv("/bin/sleep", ["sleep", "${marker}"])\n`);
    execFileSync('tar', ['czf', join(wheelhouse, 'hearthslow-1.0.tar.gz'), '-C', join(dir, 'slow'), 'hearthslow-1.0']);
    const sleepers = () =>
      readdirSync('/proc').filter((p) => {
        if (!/^\d+$/.test(p)) return false;
        try {
          return readFileSync(`/proc/${p}/cmdline`, 'utf8') === `sleep\0${marker}\0`;
        } catch {
          return false;
        }
      });
    const client = admin();
    const ws = project({ 'requirements.txt': 'hearthslow\n', 'main.py': 'print("never")' });
    const manifest = await uploadWorkspace(client, ws);
    const lease = await client.createLease({ count: 1, hours: 1 });
    const job = await client.submitJob({ leaseId: lease.id, entry: 'main.py', args: [], env: {}, outputs: [], logdir: 'runs', manifest: { files: manifest.files } });
    await waitFor('setup.py to run', () => (sleepers().length > 0 ? true : undefined), 60_000, 100);
    const before = envDirs(workDir).length;
    await client.cancelJob(job.id);
    const events: JobEvent[] = [];
    for await (const e of client.events(job.id, { follow: true })) events.push(e);
    assert.equal(finalStatus(events).status, 'cancelled');
    assert.deepEqual(setups(events).map((x) => x.phase), ['installing']);
    assert.match(logOf(events, 'stdout'), /hearthslow/);
    assert.deepEqual(sleepers(), []);
    assert.equal(envDirs(workDir).length, before - 1, 'the half-built environment is gone');
    await client.releaseLease(lease.id);
  });

  it('a kernel session on a project with requirements can import its packages', async () => {
    const client = admin();
    const ws = project({ 'requirements.txt': 'hearthtiny==1.2.3\n' });
    const manifest = await uploadWorkspace(client, ws);
    const lease = await client.createLease({ count: 1, hours: 1 });
    const k = await client.startKernel({ leaseId: lease.id, manifest: { files: manifest.files } });
    const events: JobEvent[] = [];
    const ac = new AbortController();
    const following = (async () => {
      try {
        for await (const e of client.events(k.id, { follow: true, signal: ac.signal })) events.push(e);
      } catch {
        /* aborted */
      }
    })();
    try {
      await waitFor('the kernel to be idle', () => (events.some((e) => e.body.type === 'kernel' && e.body.requestId === null && e.body.msgType === 'status' && e.body.content.execution_state === 'idle') ? true : undefined), 120_000, 50);
      // Built by the runs before, or now when this test runs alone.
      assert.equal(setups(events).pop()?.phase, 'ready');
      const { requestId } = await client.kernelRequest(k.id, { type: 'execute', code: 'import hearthtiny; print(hearthtiny.VALUE)' });
      await waitFor('the reply', () => (events.some((e) => e.body.type === 'kernel' && e.body.requestId === requestId && e.body.msgType === 'execute_reply') ? true : undefined), 60_000, 25);
      const out = events.flatMap((e) => (e.body.type === 'kernel' && e.body.requestId === requestId && e.body.msgType === 'stream' ? [String(e.body.content.text)] : [])).join('');
      assert.equal(out, 'tiny from the wheelhouse\n', JSON.stringify(events.filter((e) => e.body.type === 'kernel' && e.body.requestId === requestId)));
    } finally {
      await client.cancelJob(k.id).catch(() => undefined);
      ac.abort();
      await following;
    }
  });

  it('hearth kernel start --requirements FILE installs that file first, and the kernel imports it', async () => {
    const ws = project({ 'deps/k.txt': 'hearthtwo==0.1.0\n# for the kernel\n' });
    const start = await hearth(['kernel', 'start', '--dir', ws, '--requirements', join(ws, 'deps', 'k.txt')], cli);
    assert.equal(start.code, 0, start.stderr);
    assert.match(start.stderr, /^hearth: installing packages \(deps\/k\.txt\)…$/m);
    assert.match(start.stderr, /Successfully installed hearthtwo-0\.1\.0/);
    const session = start.stdout.trim();
    try {
      const r = await hearth(['kernel', 'exec', session, 'import hearthtwo; print(hearthtwo.VALUE)'], cli);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'two from the wheelhouse\n');
    } finally {
      await hearth(['kernel', 'stop', session], cli);
    }
    const noDir = await hearth(['kernel', 'start', '--requirements', 'x.txt'], cli);
    assert.equal(noDir.code, 64);
    assert.match(noDir.stderr, /--requirements names a file inside --dir/);
  });
});
