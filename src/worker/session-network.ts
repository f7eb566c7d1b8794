// Every sandboxed session (a job, a notebook run, a kernel, the install of its packages) gets a
// network namespace of its own: its own loopback, where nothing another session or the host
// listens on can be reached, and no route to the host's own addresses, the networks it sits on,
// the private ranges (RFC 1918, link-local with 169.254.169.254, 100.64/10, IPv6 ULA and
// link-local) or other sessions. The provider picks what else it gets (--job-network):
//   internet (default): outbound connections through user-mode NAT;
//   none: loopback only.
//
// The NAT is slirp4netns rather than pasta. slirp4netns gives the namespace a virtual network of
// its own (a /24 we choose, its gateway refusing the host's loopback with --disable-host-loopback)
// and forwards nothing inwards unless asked; pasta copies the host's addresses and routes into the
// namespace (telling a stranger's job the provider's LAN layout, and making "the host's address"
// mean the namespace itself) and forwards ports bound on the host's loopback into it unless every
// such default is turned off, option by option, in a version that changes them (Debian 12 ships a
// 2023 snapshot). slirp4netns also confines itself (--enable-sandbox, --enable-seccomp), which
// matters for a program that parses packets written by untrusted code.
//
// How: a holder process (`unshare --net`) makes the namespace and, inside it, brings loopback up
// and adds an `unreachable` route for each range above; slirp4netns then adds its tap device and
// default route; the session's bwrap starts inside it (nsenter --net). The session cannot change
// any of this: it runs without capabilities, as the job user. Routes refuse what NAT would
// otherwise carry, because slirp4netns connects from the host on the session's behalf: without
// them a session could reach anything the host can.
//
// Only a root worker can do this (the routes need CAP_NET_ADMIN in the namespace's owner; an
// ordinary user's bwrap nests its user namespaces so that nothing outside may enter them). An
// ordinary user's sandboxed sessions get `none`, and the worker says so; unsandboxed sessions
// share the host's network, and the worker says that too.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';

/** What a provider may choose for its sessions. */
export type JobNetworkMode = 'internet' | 'none';
export const JOB_NETWORK_MODES: readonly JobNetworkMode[] = ['internet', 'none'];

/**
 * What the sessions get, decided at the worker's start and told in its offer: 'host' is the
 * host's own network, shared (an unsandboxed worker; and the benchmark's baseline).
 */
export type SessionNetworkKind = JobNetworkMode | 'host';

export type SessionNetwork =
  | { kind: 'internet'; tools: NetTools; dir: string }
  | { kind: 'none' }
  | { kind: 'host' };

export interface NetTools {
  unshare: string;
  nsenter: string;
  ip: string;
  slirp4netns: string;
}

/** Ranges no session may reach, whatever the host's own routes say. */
export const BLOCKED_RANGES = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '224.0.0.0/4',
  '240.0.0.0/4',
  'fc00::/7',
  'fe80::/10',
];

/** The virtual networks slirp4netns may use, the first that overlaps none of the host's. */
const SLIRP_CIDRS = ['10.0.2.0/24', '10.254.42.0/24', '172.31.254.0/24', '192.168.254.0/24'];

export interface HostNet {
  /** IPv4 address/prefix of each of the host's interfaces, loopback excluded */
  v4: string[];
  /** IPv6 address/prefix of each, loopback excluded */
  v6: string[];
}

export function hostNetworks(ifaces: NodeJS.Dict<os.NetworkInterfaceInfo[]> = os.networkInterfaces()): HostNet {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const list of Object.values(ifaces)) {
    for (const a of list ?? []) {
      if (a.internal || !a.cidr) continue;
      (a.family === 'IPv4' ? v4 : v6).push(a.cidr);
    }
  }
  return { v4, v6 };
}

function v4ToInt(a: string): number {
  return a.split('.').reduce((n, p) => n * 256 + Number(p), 0);
}
function intToV4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}
/** [first, last] address of an IPv4 cidr, as integers. */
function v4Range(cidr: string): [number, number] {
  const [addr, bits] = cidr.split('/') as [string, string];
  const size = 2 ** (32 - Number(bits));
  const start = Math.floor(v4ToInt(addr) / size) * size;
  return [start, start + size - 1];
}
const overlaps = (a: string, b: string) => {
  const [a0, a1] = v4Range(a);
  const [b0, b1] = v4Range(b);
  return a0 <= b1 && b0 <= a1;
};
/** A cidr with its host bits cleared: 192.0.2.7/24 → 192.0.2.0/24. */
function networkOf(cidr: string): string {
  return `${intToV4(v4Range(cidr)[0])}/${cidr.split('/')[1]}`;
}

/** slirp4netns's network for a session: one the host is on would shadow that LAN's routes. */
export function slirpCidr(host: HostNet): string {
  return SLIRP_CIDRS.find((c) => !host.v4.some((h) => overlaps(c, h))) ?? SLIRP_CIDRS[0]!;
}

/** The address inside slirp's network at offset `n` (2: the gateway, 3: DNS, 100: the session). */
export function slirpAddress(cidr: string, n: number): string {
  return intToV4(v4Range(cidr)[0] + n);
}

/**
 * The `ip -batch` lines that make the blocked ranges, the host's own addresses and the networks
 * it is on unreachable from a session (slirp's own /24 stays: its gateway and DNS live there).
 */
export function blockingRoutes(host: HostNet, cidr: string, ipv6 = existsSync('/proc/net/if_inet6')): string[] {
  const v4 = new Set<string>();
  const v6 = new Set<string>();
  for (const r of BLOCKED_RANGES) (r.includes(':') ? v6 : v4).add(r);
  for (const h of host.v4) {
    v4.add(networkOf(h));
    v4.add(`${h.split('/')[0]}/32`);
  }
  for (const h of host.v6) v6.add(`${h.split('/')[0]}/128`);
  // A route of the same prefix as slirp's own would clash with it ("File exists").
  const lines = [...v4].filter((r) => networkOf(r) !== cidr).map((r) => `route add unreachable ${networkOf(r)}`);
  // A host without IPv6 refuses IPv6 routes (and has no IPv6 to reach).
  if (ipv6) for (const r of v6) lines.push(`route add unreachable ${r}`);
  return lines;
}

/** The first of `names` found on PATH (or given as a path), else null. */
function which(name: string): string | null {
  if (name.includes('/')) return existsSync(name) ? name : null;
  for (const d of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = join(d || '.', name);
    if (existsSync(p)) return p;
  }
  return null;
}

/** A network namespace made for one session; `enter` runs a command inside it. */
export interface AttachedNetwork {
  /** prefix that runs a command in the namespace: nsenter --net=… -- */
  enter: string[];
  /** the session's /etc/resolv.conf (slirp's DNS), to bind read-only over the host's */
  resolvConf: { source: string; dest: string } | null;
  /** the namespace goes once the session's processes have: stops slirp4netns and the holder */
  close(): void;
}

const ATTACH_TIMEOUT_MS = 20_000;

function lastLine(s: string): string {
  return s.trim().split('\n').pop() ?? '';
}

/** Kills a helper of ours by its pid (never a group: it has none of its own). */
function kill(p: ChildProcess | undefined): void {
  if (p && p.exitCode === null && p.signalCode === null) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/**
 * Makes a session's namespace with internet through slirp4netns (see the top of this file).
 * Rejects, with what the failing tool said, when it cannot; nothing is left running then.
 */
export async function attachInternet(net: Extract<SessionNetwork, { kind: 'internet' }>): Promise<AttachedNetwork> {
  const host = hostNetworks();
  const cidr = slirpCidr(host);
  const routes = ['link set lo up', ...blockingRoutes(host, cidr)];
  const t = net.tools;
  let holder: ChildProcess | undefined;
  let slirp: ChildProcess | undefined;
  const close = () => {
    // slirp4netns exits when its exit fd closes; the holder when its stdin does.
    (slirp?.stdio[4] as NodeJS.WritableStream | undefined)?.end();
    kill(slirp);
    holder?.stdin?.end();
    kill(holder);
  };
  try {
    // The holder keeps the namespace until close (or until the worker dies: its stdin closes).
    holder = spawn(t.unshare, ['--net', '--', 'sh', '-c', `printf '%s\\n' "$@" | ${t.ip} -batch - && echo ready && exec cat >/dev/null`, 'sh', ...routes], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const h = holder;
    let herr = '';
    h.stderr!.on('data', (c: Buffer) => (herr = (herr + c.toString()).slice(-4000)));
    await withTimeout(
      new Promise<void>((res, rej) => {
        h.once('error', rej);
        h.stdout!.on('data', (c: Buffer) => {
          if (c.toString().includes('ready')) res();
        });
        h.once('exit', (code, sig) => rej(new Error(`could not make the session's network namespace (${sig ?? `code ${code}`}): ${lastLine(herr)}`)));
      }),
      'the session network namespace',
    );
    const netns = `/proc/${h.pid}/ns/net`;
    slirp = spawn(
      t.slirp4netns,
      ['--configure', '--mtu=65520', '--disable-host-loopback', '--enable-sandbox', '--enable-seccomp', `--cidr=${cidr}`, '--ready-fd=3', '--exit-fd=4', '--netns-type=path', netns, 'tap0'],
      { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
    );
    const s = slirp;
    let serr = '';
    s.stderr!.on('data', (c: Buffer) => (serr = (serr + c.toString()).slice(-4000)));
    (s.stdio[4] as NodeJS.WritableStream).on('error', () => undefined);
    await withTimeout(
      new Promise<void>((res, rej) => {
        s.once('error', rej);
        (s.stdio[3] as NodeJS.ReadableStream).once('data', () => res());
        s.once('exit', (code, sig) => rej(new Error(`slirp4netns exited (${sig ?? `code ${code}`}): ${lastLine(serr.replace(/^WARNING: Support for seccomp is experimental$/m, ''))}`)));
      }),
      'slirp4netns',
    );
    // Once ready its messages are of no interest; reading them keeps its pipe from filling.
    s.stderr!.removeAllListeners('data');
    s.stderr!.resume();
    h.stderr!.removeAllListeners('data');
    h.stderr!.resume();
    return { enter: [t.nsenter, `--net=${netns}`, '--'], resolvConf: resolvConf(net.dir, slirpAddress(cidr, 3)), close };
  } catch (err) {
    close();
    throw err;
  }
}

async function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out starting ${what}`)), ATTACH_TIMEOUT_MS)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** A resolv.conf naming slirp's DNS (the host's resolver, reached through it), made once per address. */
function resolvConf(dir: string, dns: string): { source: string; dest: string } | null {
  let dest: string;
  try {
    // Where the system really reads it (often a link into /run): bwrap binds over that file.
    dest = realpathSync('/etc/resolv.conf');
  } catch {
    return null;
  }
  const source = join(dir, `resolv-${dns}.conf`);
  if (!existsSync(source)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(source, `# written by the Hearth worker: the session's DNS goes through its user-mode NAT\nnameserver ${dns}\n`, { mode: 0o644 });
  }
  return { source, dest };
}

/**
 * Decides at the worker's start what network its sessions get, trying the internet mode once for
 * real (a namespace with slirp4netns) so that a container or a missing tool is found now.
 */
export async function prepareSessionNetwork(o: {
  mode: JobNetworkMode | 'host';
  sandboxed: boolean;
  /** where the sessions' resolv.conf is written (the worker's own folder) */
  dir: string;
  warn: (msg: string, fields?: Record<string, unknown>) => void;
}): Promise<SessionNetwork> {
  if (o.mode === 'host') return { kind: 'host' };
  if (!o.sandboxed) {
    o.warn(
      'sessions SHARE THIS HOST\'S NETWORK: without the sandbox they reach its loopback (other sessions\' ports, the broker of `hearth up`), its LAN and whatever it can reach. ' +
        'Install bubblewrap (apt-get install bubblewrap) for a network of their own',
    );
    return { kind: 'host' };
  }
  if (o.mode === 'none') return { kind: 'none' };
  const fallback = (why: string) => {
    o.warn(`sessions get NO NETWORK but their own loopback (--job-network internet needs ${why}); pass --job-network none to silence this`);
    return { kind: 'none' } as const;
  };
  if (process.getuid?.() !== 0) return fallback('a worker run as root: an ordinary user cannot route a namespace that bubblewrap made; jobs would still run as --job-user');
  const tools = { unshare: which('unshare'), nsenter: which('nsenter'), ip: which('ip'), slirp4netns: which('slirp4netns') };
  const missing = Object.entries(tools).filter(([, p]) => !p).map(([n]) => n);
  if (missing.length) return fallback(`${missing.join(', ')} (apt-get install slirp4netns iproute2 util-linux)`);
  const net = { kind: 'internet', tools: tools as NetTools, dir: o.dir } as const;
  try {
    const a = await attachInternet(net);
    a.close();
  } catch (err) {
    return fallback(`slirp4netns to work here: ${(err as Error).message}`);
  }
  return net;
}

/** What the offer tells renters about the network of this worker's sessions. */
export function networkKind(n: SessionNetwork): SessionNetworkKind {
  return n.kind;
}
