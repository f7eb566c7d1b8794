// Every session has a network of its own (issue 14): a real worker run as root, real bwrap, real
// slirp4netns, a real broker on loopback, real ipykernel. The attack of finding 1 (a job of one
// account reads another account's kernel by scanning /proc/net/tcp and subscribing to what listens
// there) and the reach of a job: the broker's port, a listener of the test on the host's loopback
// and on its own addresses, and private and "internet" addresses on a test host that lives in a
// network namespace this test makes itself (`ip netns add` + a veth pair) — never an address of
// the machine's real network.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import { join } from 'node:path';
import { BrokerClient } from '../../src/client/api';
import { startBroker, type RunningBroker } from '../../src/broker/server';
import type { JobEvent } from '../../src/shared/protocol';
import { startWorker, type RunningWorker, type WorkerOptions } from '../../src/worker/main';
import { REPO, waitFor } from './helpers';
import { finalStatus, follow, logOf, submit, type JobHost } from './in-process-jobs';
import { backendFor } from '../backend';

const TEST_TMP = join(__dirname, '..', '..', '.test-tmp');
const FAKE_SMI = join(REPO, 'test/fixtures/nvidia-smi/fake-nvidia-smi');

const have = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
const canRun = process.getuid?.() === 0 && have('bwrap', ['--ro-bind', '/', '/', 'true']) && have('slirp4netns', ['--version']) && have('ip', ['netns', 'list']);

// The test host: addresses in each range a session must not reach, and one that stands for the
// internet (TEST-NET-2: routed to the test host only, here, while the test runs).
const OUTSIDE = '198.51.100.77';
const PRIVATE: Record<string, string> = {
  'rfc1918-10': '10.77.77.2',
  'rfc1918-172': '172.31.77.2',
  'rfc1918-192': '192.168.77.2',
  'link-local': '169.254.77.2',
  'cgnat-100.64': '100.77.77.2',
  'ipv6-ula': 'fd77:77::2',
};
const LINK_LOCAL6 = 'fe80::77:2';

/** A network namespace of the test's own, joined to the host by a veth pair, with a listener on every address. */
class TestHost {
  readonly ns = `hearth-t${process.pid}`;
  readonly hostIf = `ht${process.pid % 100000}h`;
  readonly nsIf = `ht${process.pid % 100000}n`;
  port = 0;
  private server: ChildProcess | undefined;

  async start(): Promise<void> {
    const ip = (...a: string[]) => execFileSync('ip', a, { stdio: ['ignore', 'ignore', 'pipe'] });
    const inNs = (...a: string[]) => ip('netns', 'exec', this.ns, 'ip', ...a);
    ip('netns', 'add', this.ns);
    ip('link', 'add', this.hostIf, 'type', 'veth', 'peer', 'name', this.nsIf);
    ip('link', 'set', this.nsIf, 'netns', this.ns);
    ip('link', 'set', this.hostIf, 'up');
    ip('addr', 'add', 'fe80::77:1/64', 'dev', this.hostIf, 'nodad');
    inNs('link', 'set', 'lo', 'up');
    inNs('link', 'set', this.nsIf, 'up');
    for (const a of [OUTSIDE, ...Object.values(PRIVATE)]) inNs('addr', 'add', a.includes(':') ? `${a}/128` : `${a}/32`, 'dev', this.nsIf, ...(a.includes(':') ? ['nodad'] : []));
    inNs('addr', 'add', `${LINK_LOCAL6}/64`, 'dev', this.nsIf, 'nodad');
    // Replies go back over the veth: IPv4 to whichever host address sent (the host answers ARP for
    // its addresses on any interface), IPv6 by the host side's link-local address.
    inNs('route', 'add', 'default', 'dev', this.nsIf);
    inNs('-6', 'route', 'add', 'default', 'via', 'fe80::77:1', 'dev', this.nsIf);
    for (const a of [OUTSIDE, ...Object.values(PRIVATE)]) ip(...(a.includes(':') ? ['-6'] : []), 'route', 'add', a, 'dev', this.hostIf);
    const code = [
      'import socket, sys, threading',
      'def serve(fam, addr):',
      '    s = socket.socket(fam, socket.SOCK_STREAM)',
      '    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
      '    if fam == socket.AF_INET6: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)',
      '    s.bind(addr); s.listen(64)',
      '    return s',
      's4 = serve(socket.AF_INET, ("0.0.0.0", 0))',
      'port = s4.getsockname()[1]',
      's6 = serve(socket.AF_INET6, ("::", port))',
      'def loop(s):',
      '    while True:',
      '        c, a = s.accept()',
      '        c.sendall(b"HELLO from the test host\\n"); c.close()',
      'for s in (s4, s6): threading.Thread(target=loop, args=(s,), daemon=True).start()',
      'print(port, flush=True)',
      'sys.stdin.read()',
    ].join('\n');
    const server = spawn('ip', ['netns', 'exec', this.ns, '/usr/bin/python3', '-c', code], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.server = server;
    this.port = await new Promise<number>((res, rej) => {
      server.stdout!.once('data', (c: Buffer) => res(Number(c.toString().trim())));
      server.once('exit', (c) => rej(new Error(`the test host's listener exited (${c})`)));
    });
  }

  async stop(): Promise<void> {
    if (this.server) {
      this.server.stdin?.end();
      this.server.kill('SIGKILL');
    }
    spawnSync('ip', ['link', 'del', this.hostIf], { stdio: 'ignore' });
    spawnSync('ip', ['netns', 'del', this.ns], { stdio: 'ignore' });
  }
}

/** Connects from the test process itself: what the test host's listeners answer the host. */
function connectFromHost(host: string, port: number, scope?: string): Promise<string> {
  return new Promise((res) => {
    const s = net.connect({ host: scope ? `${host}%${scope}` : host, port, timeout: 5000 });
    let got = '';
    s.on('data', (c) => (got += c.toString()));
    s.on('end', () => res(got));
    s.on('timeout', () => (s.destroy(), res('timeout')));
    s.on('error', (e) => res(`error ${e.message}`));
  });
}

interface Target {
  name: string;
  host: string;
  port: number;
  /** an interface name for an IPv6 link-local address */
  scope?: string;
}

/**
 * A job that tries each target and reports what it got: "HELLO…" (data), "connected" (a listener
 * that says nothing) or the error. Its own listener on its loopback is the control: the job's
 * connect works where something listens.
 */
function probeScript(targets: Target[]): string {
  return [
    'import json, socket, subprocess',
    `targets = json.loads(${JSON.stringify(JSON.stringify(targets))})`,
    'own = socket.socket(); own.bind(("127.0.0.1", 0)); own.listen(1)',
    'targets.append({"name": "own-loopback", "host": "127.0.0.1", "port": own.getsockname()[1]})',
    'res = {}',
    'for t in targets:',
    '    six = ":" in t["host"]',
    '    s = socket.socket(socket.AF_INET6 if six else socket.AF_INET); s.settimeout(4)',
    '    try:',
    '        addr = (t["host"], t["port"], 0, socket.if_nametoindex(t["scope"])) if t.get("scope") else (t["host"], t["port"])',
    '        s.connect(addr)',
    '        try: data = s.recv(100).decode()',
    '        except OSError: data = ""',
    '        res[t["name"]] = data.strip() or "connected"',
    '    except OSError as e:',
    '        res[t["name"]] = "refused: " + type(e).__name__',
    '    s.close()',
    'ifs = sorted(n for _, n in socket.if_nameindex())',
    'print("PROBE " + json.dumps({"res": res, "interfaces": ifs, "resolv": open("/etc/resolv.conf").read()}), flush=True)',
  ].join('\n');
}

interface Probe {
  res: Record<string, string>;
  interfaces: string[];
  resolv: string;
}

function probeOf(events: JobEvent[]): Probe {
  const line = logOf(events, 'stdout').split('\n').find((l) => l.startsWith('PROBE '));
  assert.ok(line, `the probe printed its result; stderr: ${logOf(events, 'stderr').slice(-3000)}; status: ${JSON.stringify(finalStatus(events))}`);
  return JSON.parse(line.slice('PROBE '.length)) as Probe;
}

/**
 * The attack of finding 1, as a renter's job: every TCP port listening in its view of the machine
 * (/proc/net/tcp and tcp6), a ZeroMQ SUB socket subscribed to everything connected to each; what
 * arrives in 8 s is searched for the other renter's marker.
 */
const SNOOP = [
  'import json, time, zmq',
  'ports = set()',
  'for f in ("/proc/net/tcp", "/proc/net/tcp6"):',
  '    try: lines = open(f).read().splitlines()[1:]',
  '    except OSError: continue',
  '    for l in lines:',
  '        p = l.split()',
  '        if p[3] == "0A": ports.add(int(p[1].split(":")[1], 16))',
  'ctx = zmq.Context(); sub = ctx.socket(zmq.SUB); sub.setsockopt(zmq.SUBSCRIBE, b"")',
  'for port in ports: sub.connect("tcp://127.0.0.1:%d" % port)',
  'got = []; end = time.time() + 8',
  'while time.time() < end:',
  '    if sub.poll(200): got.append(b"".join(sub.recv_multipart()).decode("utf8", "replace"))',
  'print("SNOOP " + json.dumps({"ports": sorted(ports), "messages": len(got), "text": "\\n".join(got)[-20000:]}), flush=True)',
].join('\n');

interface Net {
  dir: string;
  broker: RunningBroker;
  admin: BrokerClient;
  worker: RunningWorker;
  workerLog: string[];
}

async function startNet(opts: Partial<WorkerOptions> = {}): Promise<Net> {
  mkdirSync(TEST_TMP, { recursive: true });
  const dir = mkdtempSync(join(TEST_TMP, 'hearth-netns-'));
  const dataDir = join(dir, 'data');
  const broker = await startBroker({ ...(await backendFor(dataDir)), dataDir, port: 0, heartbeatMs: 500 });
  const admin = new BrokerClient({ url: broker.url, token: broker.adminToken! });
  const { token } = await admin.createToken('worker', 'test worker');
  const workerLog: string[] = [];
  const worker = startWorker({
    brokerUrl: broker.url,
    token,
    workDir: join(dataDir, 'worker'),
    hidePaths: [dataDir],
    name: 'netns-worker',
    nvidiaSmi: FAKE_SMI,
    killGraceMs: 1500,
    sandbox: 'bwrap',
    python: '/usr/bin/python3',
    log: (level, msg, fields) => workerLog.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`),
    ...opts,
  });
  await worker.workerId;
  return { dir, broker, admin, worker, workerLog };
}

async function stopNet(n: Net | undefined): Promise<void> {
  if (!n) return;
  await n.worker.stop();
  await n.broker.close();
  rmSync(n.dir, { recursive: true, force: true });
}

/** Runs one job on a lease of its own, released once the job ended (the worker has two devices). */
async function runJob(n: Net, files: Record<string, string>, entry: string): Promise<JobEvent[]> {
  const host: JobHost = { dir: n.dir, client: n.admin };
  try {
    return await follow(host, await submit(host, files, { entry }));
  } finally {
    if (host.leaseId) await n.admin.releaseLease(host.leaseId);
  }
}

type KernelEvent = Extract<JobEvent['body'], { type: 'kernel' }>;

describe('session networks: a network of its own for every session (issue 14)', function () {
  this.timeout(240_000);
  const testHost = new TestHost();
  let hostLoopback: net.Server;
  let hostAny: net.Server;

  before(async function () {
    if (!canRun) this.skip(); // needs root, bubblewrap, slirp4netns and iproute2 (scripts/setup.sh installs them)
    await testHost.start();
    const listen = (s: net.Server, host: string) => new Promise<void>((r) => s.listen(0, host, () => r()));
    hostLoopback = net.createServer((c) => c.end('HELLO from the host loopback\n'));
    hostAny = net.createServer((c) => c.end('HELLO from a host address\n'));
    await listen(hostLoopback, '127.0.0.1');
    await listen(hostAny, '0.0.0.0');
  });
  after(async () => {
    hostLoopback?.close();
    hostAny?.close();
    await testHost.stop();
  });

  const portOf = (s: net.Server) => (s.address() as net.AddressInfo).port;
  const hostAddresses = () =>
    Object.values(os.networkInterfaces())
      .flat()
      .filter((a): a is os.NetworkInterfaceInfo => !!a && !a.internal && a.family === 'IPv4')
      .map((a) => a.address);

  it('the test host answers the host itself on every address (so the refusals below mean something)', async () => {
    for (const [name, a] of Object.entries(PRIVATE)) assert.match(await connectFromHost(a, testHost.port), /^HELLO/, name);
    assert.match(await connectFromHost(OUTSIDE, testHost.port), /^HELLO/);
    assert.match(await connectFromHost(LINK_LOCAL6, testHost.port, testHost.hostIf), /^HELLO/);
  });

  describe('--job-network internet (the default)', () => {
    let n: Net | undefined;
    before(async () => (n = await startNet()));
    after(async () => stopNet(n));

    it('says so in the offer', async () => {
      const offers = await n!.admin.offers();
      assert.equal(offers[0]?.stack?.network, 'internet', n!.workerLog.join('\n'));
    });

    it('a job reaches the "internet" through NAT, and neither the host (loopback, broker, its addresses) nor any private range', async () => {
      const brokerPort = Number(new URL(n!.broker.url).port);
      const targets: Target[] = [
        { name: 'outside', host: OUTSIDE, port: testHost.port },
        { name: 'broker', host: '127.0.0.1', port: brokerPort },
        { name: 'host-loopback', host: '127.0.0.1', port: portOf(hostLoopback) },
        ...hostAddresses().map((a, i) => ({ name: `host-address-${i}`, host: a, port: portOf(hostAny) })),
        ...Object.entries(PRIVATE).map(([name, host]) => ({ name, host, port: testHost.port })),
        { name: 'ipv6-link-local', host: LINK_LOCAL6, port: testHost.port, scope: testHost.hostIf },
      ];
      const events = await runJob(n!, { 'probe.py': probeScript(targets) }, 'probe.py');
      assert.equal(finalStatus(events).status, 'succeeded', logOf(events, 'stderr'));
      const p = probeOf(events);
      assert.equal(p.res['own-loopback'], 'connected', 'the job\'s own loopback works');
      assert.match(p.res.outside!, /^HELLO from the test host/, 'outbound through NAT works');
      for (const t of targets.filter((t) => t.name !== 'outside')) assert.match(p.res[t.name]!, /^refused/, `${t.name} (${t.host}): ${p.res[t.name]}`);
      assert.deepEqual(p.interfaces, ['lo', 'tap0'], 'its own loopback and the NAT\'s device, nothing of the host');
      assert.match(p.resolv, /^nameserver 10\.0\.2\.3$/m, 'DNS through the NAT');
    });

    it('a job of one account cannot read a kernel of another account on the same worker (finding 1), and kernels use IPC sockets', async () => {
      const alice = new BrokerClient({ url: n!.broker.url, token: (await n!.admin.createAccount('alice')).token });
      const bob = new BrokerClient({ url: n!.broker.url, token: (await n!.admin.createAccount('bob')).token });
      const marker = 'bob-secret-0c4f1e';
      // Bob's kernel, printing his secret again and again while Alice's job listens.
      const bobLease = (await bob.createLease({ count: 1, hours: 1 })).id;
      const kernel = await bob.startKernel({ leaseId: bobLease });
      const events: JobEvent[] = [];
      const ac = new AbortController();
      const following = (async () => {
        try {
          for await (const e of bob.events(kernel.id, { follow: true, signal: ac.signal })) events.push(e);
        } catch {
          /* aborted */
        }
      })();
      const kev = (rid: string | null) => events.flatMap((e) => (e.body.type === 'kernel' && e.body.requestId === rid ? [e.body as KernelEvent] : []));
      try {
        await waitFor('bob\'s kernel to be idle', () => kev(null).some((e) => e.msgType === 'status' && e.content.execution_state === 'idle') || undefined, 120_000, 50);
        const loop = (await bob.kernelRequest(kernel.id, { type: 'execute', code: `import time\nfor i in range(150):\n    print("${marker}", i, flush=True)\n    time.sleep(0.1)` })).requestId;
        await waitFor('bob\'s cell to print', () => kev(loop).some((e) => e.msgType === 'stream') || undefined, 60_000, 25);
        const snoop = await runJob({ ...n!, admin: alice }, { 'snoop.py': SNOOP }, 'snoop.py');
        assert.equal(finalStatus(snoop).status, 'succeeded', logOf(snoop, 'stderr'));
        const line = logOf(snoop, 'stdout').split('\n').find((l) => l.startsWith('SNOOP '));
        assert.ok(line, logOf(snoop, 'stderr'));
        const r = JSON.parse(line.slice('SNOOP '.length)) as { ports: number[]; messages: number; text: string };
        assert.ok(!r.text.includes(marker), `alice's job read bob's kernel (${r.messages} messages from ports ${r.ports.join(',')})`);
        assert.deepEqual(r.ports, [], 'nothing of the host or of other sessions listens in the job\'s network');
        assert.ok(kev(loop).some((e) => e.msgType === 'stream' && String(e.content.text).includes(marker)), 'bob\'s own kernel worked all along');
        await bob.kernelRequest(kernel.id, { type: 'interrupt' });
        await waitFor('the interrupted cell', () => kev(loop).some((e) => e.msgType === 'execute_reply') || undefined, 60_000, 25);
        const info = (await bob.kernelRequest(kernel.id, { type: 'execute', code: 'import json, ipykernel.connect as c\nprint(json.loads(c.get_connection_info())["transport"])' })).requestId;
        await waitFor('the transport', () => kev(info).some((e) => e.msgType === 'execute_reply') || undefined, 60_000, 25);
        const transport = kev(info).filter((e) => e.msgType === 'stream').map((e) => String(e.content.text)).join('').trim();
        assert.equal(transport, 'ipc', 'the kernel listens on IPC sockets in a private folder, not TCP');
      } finally {
        await bob.kernelRequest(kernel.id, { type: 'interrupt' }).catch(() => undefined);
        ac.abort();
        await following;
      }
    });
  });

  describe('--job-network none', () => {
    let n: Net | undefined;
    before(async () => (n = await startNet({ jobNetwork: 'none' })));
    after(async () => stopNet(n));

    it('gives a job its own loopback and nothing else; the offer says none', async () => {
      assert.equal((await n!.admin.offers())[0]?.stack?.network, 'none');
      const targets: Target[] = [
        { name: 'outside', host: OUTSIDE, port: testHost.port },
        { name: 'host-loopback', host: '127.0.0.1', port: portOf(hostLoopback) },
        ...Object.entries(PRIVATE).map(([name, host]) => ({ name, host, port: testHost.port })),
      ];
      const events = await runJob(n!, { 'probe.py': probeScript(targets) }, 'probe.py');
      assert.equal(finalStatus(events).status, 'succeeded', logOf(events, 'stderr'));
      const p = probeOf(events);
      assert.equal(p.res['own-loopback'], 'connected');
      for (const t of targets) assert.match(p.res[t.name]!, /^refused/, `${t.name}: ${p.res[t.name]}`);
      assert.deepEqual(p.interfaces, ['lo']);
    });
  });
});
