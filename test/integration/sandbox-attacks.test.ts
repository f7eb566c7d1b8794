// Malicious jobs against a real worker: real bwrap, real python3, a real broker on loopback. Each
// test is one thing a stranger's job tried (issue 6) and must no longer get away with: writing
// the host's kernel settings, running as root, reading the provider's environment, wedging the
// worker with a sparse or huge event file, exhausting processes, memory, /tmp or disk, and
// learning the provider's paths from failure reasons.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BrokerClient } from '../../src/client/api';
import { startBroker, type RunningBroker } from '../../src/broker/server';
import type { JobEvent } from '../../src/shared/protocol';
import { prepareLimits } from '../../src/worker/limits';
import { startWorker, type RunningWorker, type WorkerOptions } from '../../src/worker/main';
import { hearth, REPO, spawnHearth, stopProcess, waitForOutput } from './helpers';
import { finalStatus, follow, logOf, submit, waitFor } from './in-process-jobs';
import { isAlive, jobProcesses } from './job-processes';
import { backendFor } from '../backend';

const TEST_TMP = join(__dirname, '..', '..', '.test-tmp');
const TBWRITER = readFileSync(join(REPO, 'test/fixtures/py/tbwriter.py'));
const isRoot = process.getuid?.() === 0;

interface Net {
  dir: string;
  dataDir: string;
  workDir: string;
  broker: RunningBroker;
  client: BrokerClient;
  worker: RunningWorker;
  workerLog: string[];
  leaseId?: string;
}

async function startNet(opts: Partial<WorkerOptions> = {}, env: Record<string, string> = {}): Promise<Net> {
  // Not under /tmp: the sandbox's tmpfs over /tmp would hide it.
  mkdirSync(TEST_TMP, { recursive: true });
  const dir = mkdtempSync(join(TEST_TMP, 'hearth-attacks-'));
  const dataDir = join(dir, 'data');
  const broker = await startBroker({ ...(await backendFor(dataDir)), dataDir, port: 0, heartbeatMs: 500 });
  const client = new BrokerClient({ url: broker.url, token: broker.adminToken! });
  const { token } = await client.createToken('worker', 'test worker');
  const workerLog: string[] = [];
  const workDir = join(dataDir, 'worker');
  // The provider's environment as the worker process has it; jobs read it when they start.
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  const worker = startWorker({
    brokerUrl: broker.url,
    token,
    workDir,
    hidePaths: [dataDir],
    name: 'attacked-worker',
    nvidiaSmi: join(dir, 'no-nvidia-smi'),
    killGraceMs: 1500,
    telemetryMs: 300,
    sandbox: 'bwrap',
    python: '/usr/bin/python3',
    log: (level, msg, fields) => workerLog.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`),
    ...opts,
  });
  await worker.workerId;
  const net: Net = { dir, dataDir, workDir, broker, client, worker, workerLog };
  restoreEnv.set(net, saved);
  return net;
}
const restoreEnv = new WeakMap<Net, Record<string, string | undefined>>();

async function stopNet(net: Net | undefined): Promise<void> {
  if (!net) return;
  await net.worker.stop();
  await net.broker.close();
  for (const [k, v] of Object.entries(restoreEnv.get(net) ?? {})) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  rmSync(net.dir, { recursive: true, force: true });
}

/** The one line the job printed as `TAG {json}`. */
function jsonLine<T>(events: JobEvent[], tag: string): T {
  const line = logOf(events, 'stdout').split('\n').find((l) => l.startsWith(tag + ' '));
  assert.ok(line, `the job printed ${tag}; stdout: ${logOf(events, 'stdout').slice(0, 2000)} stderr: ${logOf(events, 'stderr').slice(-4000)}`);
  return JSON.parse(line.slice(tag.length + 1)) as T;
}

async function runJob(net: Net, files: Record<string, string | Buffer>, spec: Parameters<typeof submit>[2]): Promise<JobEvent[]> {
  const jobId = await submit(net, files, spec);
  return follow(net, jobId);
}

const bwrapWorks = (() => {
  try {
    execFileSync('bwrap', ['--ro-bind', '/', '/', 'true']);
    return true;
  } catch {
    return false;
  }
})();

describe('sandbox attacks: what a stranger\'s job tries on a worker', function () {
  this.timeout(180_000);
  before(function () {
    if (!bwrapWorks) this.skip(); // scripts/setup.sh installs bubblewrap
  });

  describe('kernel settings, identity and system calls (finding 1)', () => {
    let net: Net | undefined;
    before(async () => (net = await startNet()));
    after(async () => stopNet(net));

    it('cannot write /proc/sys (vm.swappiness, kernel.core_pattern): the host values stay', async () => {
      const before = {
        swappiness: readFileSync('/proc/sys/vm/swappiness', 'utf8'),
        core: readFileSync('/proc/sys/kernel/core_pattern', 'utf8'),
      };
      // It writes back the value it read: on a vulnerable worker the write succeeds and changes
      // nothing, so this test never alters the machine it runs on.
      const script = [
        'import json',
        'res = {}',
        'for p in ["/proc/sys/vm/swappiness", "/proc/sys/kernel/core_pattern"]:',
        '    try:',
        '        v = open(p).read()',
        '        with open(p, "w") as f: f.write(v)',
        '        res[p] = "wrote"',
        '    except OSError as e:',
        '        res[p] = type(e).__name__',
        'print("SYSCTL " + json.dumps(res), flush=True)',
      ].join('\n');
      const events = await runJob(net!, { 's.py': script }, { entry: 's.py' });
      assert.equal(finalStatus(events).status, 'succeeded', logOf(events, 'stderr'));
      const res = jsonLine<Record<string, string>>(events, 'SYSCTL');
      for (const [p, r] of Object.entries(res)) assert.match(r, /PermissionError|OSError/, `${p}: ${r}`);
      assert.equal(readFileSync('/proc/sys/vm/swappiness', 'utf8'), before.swappiness);
      assert.equal(readFileSync('/proc/sys/kernel/core_pattern', 'utf8'), before.core);
    });

    it('never runs as uid 0, cannot read /etc/shadow, and the kernel knobs OCI runtimes mask are masked', async function () {
      const script = [
        'import json, os, subprocess',
        'res = {"uid": os.getuid(), "euid": os.geteuid(), "id": subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip()}',
        'for p in ["/etc/shadow", "/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/sysrq-trigger", "/sys/firmware/memmap/0/type"]:',
        '    try:',
        '        res[p] = "read: " + open(p).read(64)',
        '    except OSError as e:',
        '        res[p] = type(e).__name__',
        'for p in ["/proc/sysrq-trigger", "/proc/irq/default_smp_affinity"]:',
        '    try:',
        '        with open(p, "w") as f: f.write("0")',
        '        res["write " + p] = "wrote"',
        '    except OSError as e:',
        '        res["write " + p] = type(e).__name__',
        'res["seccomp"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("Seccomp:")][0]',
        'print("ID " + json.dumps(res), flush=True)',
      ].join('\n');
      const events = await runJob(net!, { 'i.py': script }, { entry: 'i.py' });
      assert.equal(finalStatus(events).status, 'succeeded', logOf(events, 'stderr'));
      const res = jsonLine<Record<string, string | number>>(events, 'ID');
      assert.notEqual(res.uid, 0);
      assert.notEqual(res.euid, 0);
      assert.notEqual(res.id, '0');
      assert.match(String(res.id), /^\d+$/);
      for (const p of ['/etc/shadow', '/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/sched_debug', '/sys/firmware/memmap/0/type']) {
        assert.doesNotMatch(String(res[p]), /^read: ./, `${p}: ${res[p]}`);
      }
      for (const p of ['/proc/sysrq-trigger', '/proc/irq/default_smp_affinity']) assert.notEqual(res['write ' + p], 'wrote', p);
      assert.equal(res.seccomp, '2', 'a seccomp filter is in force');
    });

    it('mount, unshare, ptrace, keyctl, bpf and perf_event_open fail with EPERM (seccomp), even where an unprivileged user could', async () => {
      const script = [
        'import ctypes, errno, json, os',
        'libc = ctypes.CDLL(None, use_errno=True)',
        'def call(name, *args):',
        '    r = getattr(libc, name)(*args)',
        '    return "ok" if r >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))',
        'def sysc(nr, *args):',
        '    r = libc.syscall(nr, *args)',
        '    return "ok" if r >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))',
        'import platform',
        'x86 = platform.machine() == "x86_64"',
        'res = {}',
        'os.makedirs("/tmp/m", exist_ok=True)',
        'res["mount"] = call("mount", b"none", b"/tmp/m", b"tmpfs", 0, None)',
        // What an unprivileged user may do on this kernel: a new user namespace, PTRACE_TRACEME,
        // its own session keyring.
        'res["unshare"] = call("unshare", 0x10000000)',
        'res["ptrace"] = sysc(101 if x86 else 117, 0, 0, 0, 0)',
        'res["keyctl"] = sysc(250 if x86 else 219, 0, ctypes.c_long(-3), 0)',
        'res["bpf"] = sysc(321 if x86 else 280, 0, 0, 0)',
        'res["perf_event_open"] = sysc(298 if x86 else 241, 0, 0, -1, -1, 0)',
        'res["setns"] = sysc(308 if x86 else 268, 0, 0)',
        'print("CALLS " + json.dumps(res), flush=True)',
      ].join('\n');
      const events = await runJob(net!, { 'c.py': script }, { entry: 'c.py' });
      assert.equal(finalStatus(events).status, 'succeeded', logOf(events, 'stderr'));
      const res = jsonLine<Record<string, string>>(events, 'CALLS');
      for (const [k, v] of Object.entries(res)) assert.equal(v, 'EPERM', `${k}: ${v}`);
    });

    it('ordinary jobs still work: threads, subprocesses, multiprocessing, /tmp, writes in its folder, torch when installed', async () => {
      const script = [
        'import json, multiprocessing, os, subprocess, sys, tempfile, threading',
        'res = {}',
        't = threading.Thread(target=lambda: res.__setitem__("thread", "ok")); t.start(); t.join()',
        'res["sub"] = subprocess.run([sys.executable, "-c", "print(6*7)"], capture_output=True, text=True).stdout.strip()',
        'res["sh"] = subprocess.run("echo hi | tr a-z A-Z", shell=True, capture_output=True, text=True).stdout.strip()',
        'def sq(x): return x * x',
        'if __name__ == "__main__":',
        '    with multiprocessing.Pool(2) as p: res["pool"] = sum(p.map(sq, range(10)))',
        '    with tempfile.NamedTemporaryFile(dir="/tmp") as f: f.write(b"x" * 1000000); f.flush(); res["tmp"] = os.path.getsize(f.name)',
        '    os.makedirs("outputs", exist_ok=True); open("outputs/a.txt", "w").write("a"); res["own"] = open("outputs/a.txt").read()',
        '    res["home"] = os.path.expanduser("~")',
        '    os.makedirs(os.path.expanduser("~/.cache/x"), exist_ok=True); res["homewrite"] = "ok"',
        '    try:',
        '        import torch; res["torch"] = str(torch.zeros(2).sum().item())',
        '    except ImportError:',
        '        res["torch"] = "absent"',
        '    print("OK " + json.dumps(res), flush=True)',
      ].join('\n');
      const events = await runJob(net!, { 'ok.py': script }, { entry: 'ok.py' });
      assert.equal(finalStatus(events).status, 'succeeded', logOf(events, 'stderr'));
      const res = jsonLine<Record<string, string | number>>(events, 'OK');
      assert.deepEqual(
        { thread: res.thread, sub: res.sub, sh: res.sh, pool: res.pool, tmp: res.tmp, own: res.own, homewrite: res.homewrite },
        { thread: 'ok', sub: '42', sh: 'HI', pool: 285, tmp: 1000000, own: 'a', homewrite: 'ok' },
      );
      assert.ok(res.torch === 'absent' || res.torch === '0.0', String(res.torch));
    });
  });

  describe('the provider\'s environment (finding 2)', () => {
    let net: Net | undefined;
    before(async () => (net = await startNet({}, { AWS_SECRET_ACCESS_KEY: 'aws-provider-secret', HF_TOKEN: 'hf_provider_secret', SSH_AUTH_SOCK: '/tmp/agent.sock' })));
    after(async () => stopNet(net));

    it('a job sees an allowlisted environment plus what the renter passed, none of the provider\'s secrets', async () => {
      const script = 'import json, os\nprint("ENV " + json.dumps(dict(os.environ)), flush=True)';
      const events = await runJob(net!, { 'e.py': script }, { entry: 'e.py', env: { RENTER_SETTING: 'mine', WANDB_MODE: 'offline' } });
      assert.equal(finalStatus(events).status, 'succeeded', logOf(events, 'stderr'));
      const env = jsonLine<Record<string, string>>(events, 'ENV');
      const all = JSON.stringify(env);
      assert.ok(!all.includes('aws-provider-secret') && !all.includes('hf_provider_secret'), all);
      for (const k of ['AWS_SECRET_ACCESS_KEY', 'HF_TOKEN', 'SSH_AUTH_SOCK', 'HEARTH_TOKEN']) assert.equal(env[k], undefined, k);
      assert.equal(env.RENTER_SETTING, 'mine');
      assert.equal(env.WANDB_MODE, 'offline');
      assert.ok(env.PATH && env.HEARTH_JOB_ID && env.HEARTH_LOGDIR);
      assert.equal(env.PYTHONUNBUFFERED, '1');
      assert.ok(env.HOME && env.HOME !== process.env.HOME, `HOME=${env.HOME}`);
      // HF_HOME: the account's Hugging Face cache on this worker (src/worker/hf-cache.ts).
      // COLUMNS/LINES: the terminal size a job's progress bars are drawn for.
      const allowed = /^(PATH|LANG|LANGUAGE|LC_\w+|TZ|TERM|COLUMNS|LINES|HOME|HF_HOME|LD_LIBRARY_PATH|PYTHON\w+|HEARTH_\w+|CUDA_\w+|RENTER_SETTING|WANDB_MODE|PWD|SHLVL|_)$/;
      for (const k of Object.keys(env)) assert.match(k, allowed, `${k} leaked into the job`);
    });
  });

  describe('failure reasons (finding 5)', () => {
    let net: Net | undefined;
    before(async () => (net = await startNet()));
    after(async () => stopNet(net));

    it('do not show the worker\'s absolute paths', async () => {
      // A manifest where a file and a folder share a name: the workspace cannot be made, and
      // Node's error names the absolute path it failed on.
      const content = 'print(1)';
      const sha256 = createHash('sha256').update(content).digest('hex');
      const ws = mkdtempSync(join(net!.dir, 'ws-'));
      writeFileSync(join(ws, 'a'), content);
      await submit(net!, { 'a': content }, { entry: 'a' }).then((id) => follow(net!, id)); // uploads the blob
      const job = await net!.client.submitJob({
        leaseId: net!.leaseId!,
        entry: 'a/b',
        args: [],
        env: {},
        outputs: [],
        logdir: 'runs',
        manifest: { files: [{ path: 'a', sha256, size: content.length, executable: false }, { path: 'a/b', sha256, size: content.length, executable: false }] },
      });
      const events = await follow(net!, job.id);
      const st = finalStatus(events);
      assert.equal(st.status, 'failed');
      assert.match(String(st.reason), /could not prepare the workspace/);
      const said = JSON.stringify(events.map((e) => e.body));
      for (const p of [net!.workDir, net!.dataDir, net!.dir, TEST_TMP]) assert.ok(!said.includes(p), `${p} appears in ${said}`);
    });
  });

  describe('TensorBoard files (findings 3 and 6)', () => {
    let net: Net | undefined;
    afterEach(async () => {
      await stopNet(net);
      net = undefined;
    });

    it('a sparse 8 GiB tfevents file is read only up to the provider\'s cap, with one notice, and the job ends', async () => {
      net = await startNet({ tailMaxFileBytes: 32 << 20 } as Partial<WorkerOptions>);
      const script = [
        'import os, subprocess',
        'os.makedirs("runs", exist_ok=True)',
        'subprocess.run(["truncate", "-s", "8G", "runs/events.out.tfevents.1.sparse"], check=True)',
        'print("made", os.path.getsize("runs/events.out.tfevents.1.sparse"), flush=True)',
      ].join('\n');
      const events = await runJob(net, { 't.py': script }, { entry: 't.py' });
      assert.equal(finalStatus(events).status, 'succeeded', logOf(events, 'stderr'));
      assert.match(logOf(events, 'stdout'), /made 8589934592/);
      const notices = events.flatMap((e) => (e.body.type === 'notice' ? [e.body.message] : []));
      const capped = notices.filter((m) => /events\.out\.tfevents\.1\.sparse/.test(m) && /32 MiB/.test(m));
      assert.equal(capped.length, 1, notices.join('\n'));
    });

    it('cancel while the job is finishing (tailing a huge file) ends it cancelled', async () => {
      // A provider who allows huge files: the last pass after the job exits then has 8 GiB to read.
      net = await startNet({ tailMaxFileBytes: 64 * 2 ** 30 } as Partial<WorkerOptions>);
      const script = [
        'import os, subprocess',
        'os.makedirs("runs", exist_ok=True)',
        'subprocess.run(["truncate", "-s", "8G", "runs/events.out.tfevents.1.sparse"], check=True)',
      ].join('\n');
      const jobId = await submit(net, { 't.py': script }, { entry: 't.py' });
      const done = follow(net, jobId);
      await waitFor(() => net!.workerLog.some((l) => l.includes('job process exited') && l.includes(jobId)), 'the job to be finishing', 60_000);
      await net.client.cancelJob(jobId);
      const st = finalStatus(await done);
      assert.equal(st.status, 'cancelled');
    });

    it('1000 scalars with 4000-byte tags arrive split in events of at most 256 KiB, tags cut to 512 bytes with a marker', async () => {
      net = await startNet();
      const script = [
        'from tbwriter import SummaryWriter',
        'w = SummaryWriter("runs")',
        'for i in range(1000):',
        '    w.add_scalar("%04d" % i + "x" * 3996, float(i), 1)',
        'w.close()',
        'print("wrote", flush=True)',
      ].join('\n');
      const events = await runJob(net, { 'tb.py': script, 'tbwriter.py': TBWRITER }, { entry: 'tb.py' });
      assert.equal(finalStatus(events).status, 'succeeded', logOf(events, 'stderr'));
      const scalars = events.flatMap((e) => (e.body.type === 'scalars' ? [e.body] : []));
      const points = scalars.flatMap((s) => s.points);
      assert.equal(points.length, 1000);
      for (const s of scalars) assert.ok(Buffer.byteLength(JSON.stringify(s)) <= 256 << 10, `an event of ${Buffer.byteLength(JSON.stringify(s))} bytes`);
      assert.ok(scalars.length >= 2);
      for (const p of points) {
        assert.ok(Buffer.byteLength(p.tag) <= 512, `tag of ${Buffer.byteLength(p.tag)} bytes`);
        assert.ok(p.tag.endsWith('…'), p.tag.slice(-10));
      }
      assert.equal(new Set(points.map((p) => p.tag)).size, 1000);
    });
  });

  describe('limits (finding 4)', function () {
    before(function () {
      // cgroups need root (or a delegated subtree); without them the rlimit fallback is used.
      if (!isRoot) this.skip();
    });
    let net: Net | undefined;
    before(async () => (net = await startNet({ jobPids: 64, jobMemoryBytes: 256 << 20, jobTmpBytes: 16 << 20, jobDiskBytes: 64 << 20 } as Partial<WorkerOptions>)));
    after(async () => stopNet(net));

    it('a fork bomb gets at most --job-pids processes, and the host is fine', async () => {
      const script = [
        'import json, os, time',
        'made = 0; err = None',
        'kids = []',
        'for i in range(300):',
        '    try:',
        '        pid = os.fork()',
        '    except OSError as e:',
        '        err = type(e).__name__; break',
        '    if pid == 0:',
        '        time.sleep(30); os._exit(0)',
        '    kids.append(pid); made += 1',
        'print("FORK " + json.dumps({"made": made, "err": err}), flush=True)',
        'for k in kids: os.kill(k, 9)',
      ].join('\n');
      const jobId = await submit(net!, { 'f.py': script }, { entry: 'f.py' });
      const events = await follow(net!, jobId);
      const res = jsonLine<{ made: number; err: string | null }>(events, 'FORK');
      assert.ok(res.made < 64, `made ${res.made} processes`);
      assert.equal(res.err, 'BlockingIOError');
      // The host still forks.
      assert.equal(execFileSync('sh', ['-c', 'echo ok'], { encoding: 'utf8' }), 'ok\n');
      await waitFor(() => jobProcesses(jobId).every((p) => !isAlive(p)), 'the job to be gone', 20_000);
    });

    it('filling /tmp stops with ENOSPC at --job-tmp', async () => {
      const script = [
        'import errno, json',
        'n = 0; err = None',
        'try:',
        '    with open("/tmp/fill", "wb") as f:',
        '        for i in range(200):',
        '            f.write(b"x" * (1 << 20)); f.flush(); n += 1',
        'except OSError as e:',
        '    err = errno.errorcode[e.errno]',
        'print("TMP " + json.dumps({"mib": n, "err": err}), flush=True)',
      ].join('\n');
      const events = await runJob(net!, { 't.py': script }, { entry: 't.py' });
      const res = jsonLine<{ mib: number; err: string | null }>(events, 'TMP');
      assert.equal(res.err, 'ENOSPC');
      assert.ok(res.mib <= 16, `wrote ${res.mib} MiB`);
    });

    it('a memory hog is killed, with a reason naming the limit', async () => {
      // Bounded (1 GiB), so that a worker without limits survives this test too.
      const script = ['blocks = []', 'for i in range(32):', '    blocks.append(bytearray(32 << 20))', 'print("kept 1 GiB", flush=True)'].join('\n');
      const events = await runJob(net!, { 'm.py': script }, { entry: 'm.py' });
      const st = finalStatus(events);
      assert.equal(st.status, 'failed');
      assert.match(String(st.reason), /out of memory: limit 256 MiB/);
    });

    it('a disk hog writing its folder is stopped, with a reason naming the limit', async () => {
      const script = ['import time', 'with open("big.bin", "wb") as f:', '    for i in range(400):', '        f.write(b"x" * (1 << 20)); f.flush(); time.sleep(0.01)', 'print("wrote it all", flush=True)'].join('\n');
      const events = await runJob(net!, { 'd.py': script }, { entry: 'd.py' });
      const st = finalStatus(events);
      assert.equal(st.status, 'failed');
      assert.match(String(st.reason), /disk limit: 64 MiB/);
      assert.ok(!logOf(events, 'stdout').includes('wrote it all'));
    });

    it('a sparse output larger than the disk limit is not uploaded, with a notice naming it', async () => {
      const script = [
        'import os, subprocess',
        'os.makedirs("outputs", exist_ok=True)',
        'open("outputs/small.txt", "w").write("kept")',
        // It takes no blocks (the disk watch lets it be) but would upload 1 GiB of zeros.
        'subprocess.run(["truncate", "-s", "1G", "outputs/zz-big.pt"], check=True)',
      ].join('\n');
      const events = await runJob(net!, { 's.py': script }, { entry: 's.py', outputs: ['outputs/**'] });
      assert.equal(finalStatus(events).status, 'succeeded', logOf(events, 'stderr'));
      assert.deepEqual(events.flatMap((e) => (e.body.type === 'artifact' ? [e.body.artifact.path] : [])), ['outputs/small.txt']);
      const notices = events.flatMap((e) => (e.body.type === 'notice' ? [e.body.message] : []));
      assert.ok(notices.some((m) => /not uploaded, past the disk limit of 64 MiB.*outputs\/zz-big\.pt/.test(m)), notices.join('\n'));
    });

    it('a worker starting removes the cgroups a crashed worker left, and no other worker\'s', async () => {
      const backend = await prepareLimits();
      assert.equal(backend.kind, 'cgroup-v1', JSON.stringify(backend)); // this machine's
      if (backend.kind !== 'cgroup-v1') return;
      const hearthDir = dirname(backend.memory);
      // A pid that is surely gone: a process that ran and was reaped.
      const dead = spawnSync('true').pid!;
      const crashed = join(hearthDir, `worker-${dead}`);
      mkdirSync(join(crashed, 'job_left'), { recursive: true });
      const mine = join(hearthDir, `worker-${process.pid}`, 'job_running');
      mkdirSync(mine, { recursive: true });
      try {
        await prepareLimits();
        assert.ok(!existsSync(crashed), 'the crashed worker\'s cgroups are gone');
        assert.ok(existsSync(mine), 'a live worker\'s are kept');
      } finally {
        execFileSync('rmdir', [mine]);
      }
    });

    it('the job\'s cgroups are removed after it ends', async () => {
      const events = await runJob(net!, { 'n.py': 'print("hi")' }, { entry: 'n.py' });
      assert.equal(finalStatus(events).status, 'succeeded');
      const left = net!.workerLog.filter((l) => l.includes('could not remove'));
      assert.deepEqual(left, []);
      const own = readFileSync('/proc/self/cgroup', 'utf8');
      const mem = /:memory:(\S+)/.exec(own)?.[1];
      if (mem !== undefined) {
        const parent = join('/sys/fs/cgroup/memory', mem, 'hearth');
        if (existsSync(parent)) {
          // hearth/worker-<pid>/<job>: this process's worker keeps no job's cgroup once it ended.
          const jobs = execFileSync('find', [join(parent, `worker-${process.pid}`), '-mindepth', '1', '-maxdepth', '1', '-type', 'd'], { encoding: 'utf8' }).trim();
          assert.equal(jobs, '', `left behind: ${jobs}`);
        }
      }
    });
  });
});

describe('sandbox attacks: disk hidden in deep folders, and kept job folders (issue 14, finding 3)', function () {
  this.timeout(180_000);
  let net: Net | undefined;
  before(async function () {
    if (!bwrapWorks) this.skip();
    net = await startNet({ jobDiskBytes: 64 << 20, keptJobsMaxBytes: 24 << 20 } as Partial<WorkerOptions>);
  });
  after(async () => stopNet(net));
  const jobDir = (id: string) => join(net!.workDir, 'jobs', id);
  /** A job that makes `depth` nested folders (by descriptor, as deep as it likes), then writes `mib` MiB at the bottom, slowly. */
  const nested = (depth: number, mib: number) =>
    [
      'import os, time',
      'fd = os.open(".", os.O_RDONLY)',
      `for i in range(${depth}):`,
      '    os.mkdir("d", dir_fd=fd); nfd = os.open("d", os.O_RDONLY, dir_fd=fd); os.close(fd); fd = nfd',
      'out = os.open("fill", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)',
      `for i in range(${mib}):`,
      '    os.write(out, b"x" * (1 << 20)); time.sleep(0.02)',
      'print("wrote it all", flush=True)',
    ].join('\n');

  it('a job writing 200 MiB 300 folders deep under a 64 MiB disk limit is stopped', async () => {
    const jobId = await submit(net!, { 'n.py': nested(300, 200) }, { entry: 'n.py' });
    const events = await follow(net!, jobId);
    const st = finalStatus(events);
    assert.equal(st.status, 'failed', logOf(events, 'stdout'));
    assert.match(String(st.reason), /disk limit: 64 MiB exceeded/);
    assert.ok(!logOf(events, 'stdout').includes('wrote it all'));
  });

  it('folders nested past what a path can name stop the job (the walk cannot see below), and its folder is not kept', async () => {
    // 2 100 levels of "d/": over 4 096 bytes of path, where readdir gives ENAMETOOLONG.
    const jobId = await submit(net!, { 'n.py': nested(2100, 200) }, { entry: 'n.py' });
    const events = await follow(net!, jobId);
    const st = finalStatus(events);
    assert.equal(st.status, 'failed', logOf(events, 'stdout'));
    assert.match(String(st.reason), /disk limit: its folder cannot be measured whole \(folders nested too deep to measure\)/);
    await waitFor(() => !existsSync(jobDir(jobId)), 'the unmeasurable folder removed');
  });

  it('kept job folders count against a worker-wide cap: the oldest go first', async () => {
    const write = (mib: number) => `open("keep.bin", "wb").write(b"x" * (${mib} << 20))\n`;
    const a = await submit(net!, { 'k.py': write(10) }, { entry: 'k.py' });
    assert.equal(finalStatus(await follow(net!, a)).status, 'succeeded');
    const b = await submit(net!, { 'k.py': write(10) }, { entry: 'k.py' });
    assert.equal(finalStatus(await follow(net!, b)).status, 'succeeded');
    await waitFor(() => existsSync(jobDir(b)) && existsSync(jobDir(a)), 'two folders of 10 MiB kept under a cap of 24 MiB');
    // A third brings them to 30 MiB: the oldest goes, the newer two stay.
    const c = await submit(net!, { 'k.py': write(10) }, { entry: 'k.py' });
    assert.equal(finalStatus(await follow(net!, c)).status, 'succeeded');
    await waitFor(() => !existsSync(jobDir(a)), 'the oldest kept folder removed');
    assert.ok(existsSync(jobDir(b)) && existsSync(jobDir(c)));
  });
});

describe('sandbox attacks: the limit flags of the built CLI', function () {
  this.timeout(180_000);
  before(function () {
    if (!bwrapWorks || !isRoot) this.skip();
  });

  it('hearth up --job-memory/--job-pids/--job-tmp reach the jobs; a bad size is a usage error', async () => {
    const bad = await hearth(['worker', '--broker', 'http://127.0.0.1:9', '--token', 'x', '--job-memory', 'lots']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--job-memory: a size such as 512M/);
    mkdirSync(TEST_TMP, { recursive: true });
    const dir = mkdtempSync(join(TEST_TMP, 'hearth-attacks-up-'));
    const dataDir = join(dir, 'data');
    const up = spawnHearth(['--data-dir', dataDir, 'up', '--port', '0', '--job-memory', '128M', '--job-pids', '40', '--job-tmp', '8M']);
    try {
      await waitForOutput(up, /Hearth is up at/);
      const cfg = JSON.parse(readFileSync(join(dataDir, 'config.json'), 'utf8')) as { brokerUrl: string; token: string };
      const env = { HEARTH_BROKER_URL: cfg.brokerUrl, HEARTH_TOKEN: cfg.token, HEARTH_DATA_DIR: join(dir, 'cli') };
      const ws = join(dir, 'ws');
      mkdirSync(ws);
      writeFileSync(
        join(ws, 'probe.py'),
        [
          'import errno, os, threading, time',
          'n = 0',
          'try:',
          '    with open("/tmp/f", "wb") as f:',
          '        for i in range(64): f.write(b"x" * (1 << 20)); f.flush(); n += 1',
          'except OSError as e:',
          '    print("tmp", n, errno.errorcode[e.errno], flush=True)',
          'os.remove("/tmp/f")',
          'started = 0',
          'try:',
          '    for i in range(100):',
          '        threading.Thread(target=time.sleep, args=(5,), daemon=True).start(); started += 1',
          'except RuntimeError:',
          '    pass',
          'print("threads", started, flush=True)',
          'b = bytearray(1 << 30)',
          'print("survived", flush=True)',
        ].join('\n'),
      );
      const r = await hearth(['run', join(ws, 'probe.py')], env);
      assert.notEqual(r.code, 0);
      assert.match(r.stdout, /tmp [0-8] ENOSPC/);
      const threads = Number(/threads (\d+)/.exec(r.stdout)?.[1]);
      assert.ok(threads < 40, `started ${threads} threads`);
      assert.ok(!r.stdout.includes('survived'));
      assert.match(r.stderr, /out of memory: limit 128 MiB/);
    } finally {
      await stopProcess(up, 'SIGINT');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sandbox attacks: a worker run as an ordinary user', function () {
  this.timeout(180_000);
  before(function () {
    // Root starts the worker as nobody; elsewhere the tests already run as an ordinary user.
    if (!bwrapWorks || !isRoot) this.skip();
  });

  it('runs jobs as its own user under bwrap\'s user namespace and seccomp, limited by rlimits it announces once', async () => {
    mkdirSync(TEST_TMP, { recursive: true });
    const dir = mkdtempSync(join(TEST_TMP, 'hearth-attacks-user-'));
    const broker = await startBroker({ ...(await backendFor(join(dir, 'broker'))), dataDir: join(dir, 'broker'), port: 0, heartbeatMs: 500 });
    const client = new BrokerClient({ url: broker.url, token: broker.adminToken! });
    const { token } = await client.createToken('worker', 'unprivileged worker');
    const home = join(dir, 'home');
    mkdirSync(home);
    execFileSync('chown', ['-R', '65534:65534', home]);
    chmodSync(dir, 0o711);
    const worker = spawn(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath, join(REPO, 'dist', 'cli.js'), '--data-dir', join(home, 'data'), 'worker', '--broker', broker.url, '--python', '/usr/bin/python3', '--nvidia-smi', join(dir, 'none'), '--job-pids', '64', '--sandbox', 'bwrap'],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, HEARTH_WORKER_TOKEN: token }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let log = '';
    worker.stdout!.on('data', (c: Buffer) => (log += c.toString()));
    worker.stderr!.on('data', (c: Buffer) => (log += c.toString()));
    try {
      await waitFor(() => log.includes('connected to the broker'), 'the worker to connect', 60_000);
      const net = { dir, client };
      const script = [
        'import ctypes, errno, json, os, time',
        'libc = ctypes.CDLL(None, use_errno=True)',
        'r = libc.unshare(0x10000000)',
        'res = {"uid": os.getuid(), "unshare": "ok" if r == 0 else errno.errorcode[ctypes.get_errno()]}',
        'made = 0',
        'kids = []',
        'for i in range(300):',
        '    try:',
        '        pid = os.fork()',
        '    except OSError:',
        '        break',
        '    if pid == 0:',
        '        time.sleep(20); os._exit(0)',
        '    kids.append(pid); made += 1',
        'for k in kids: os.kill(k, 9)',
        'res["made"] = made',
        'print("USER " + json.dumps(res), flush=True)',
      ].join('\n');
      const events = await runJob(net as unknown as Net, { 'u.py': script }, { entry: 'u.py' });
      assert.equal(finalStatus(events).status, 'succeeded', `${JSON.stringify(finalStatus(events))} ${logOf(events, 'stderr')}\n${log}`);
      const res = jsonLine<{ uid: number; unshare: string; made: number }>(events, 'USER');
      assert.equal(res.uid, 65534);
      assert.equal(res.unshare, 'EPERM');
      // RLIMIT_NPROC counts the user's processes: the worker allows what the user runs at the
      // job's start plus --job-pids, so the job itself gets at most that many.
      assert.ok(res.made <= 64 && res.made > 0, `made ${res.made}`);
      assert.equal(log.split('\n').filter((l) => l.includes('job limits use rlimits')).length, 1, log);
    } finally {
      worker.kill('SIGTERM');
      await new Promise((r) => worker.once('close', r));
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
