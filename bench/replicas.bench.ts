// Several broker replicas on PostgreSQL against one SQLite broker, all real `hearth broker`
// processes on loopback, driven by scripted worker sockets speaking the real protocol and by
// followers reading the real NDJSON follow route. Starts its own PostgreSQL cluster (Debian's, as
// scripts/postgres-test.sh does) unless HEARTH_BENCH_DATABASE names one.
//  1. Event log: 20 workers stream as fast as acks allow, 200 followers read every event;
//     appended and delivered per second and p99 delivery latency, one SQLite broker vs two
//     PostgreSQL replicas (workers and followers spread over both, so half the followers read
//     events another replica stored).
//  2. Load: 1 000 worker sockets heartbeating and each streaming one event a second, 200
//     followers, for LOAD_S seconds (default 60) against two replicas: nothing lost, p99, memory.
// Run: node --import tsx bench/replicas.bench.ts [load seconds]   (npm run bench -- replicas)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import postgres from 'postgres';
import WebSocket from 'ws';
import { openPostgresStore } from '../src/broker/store/postgres/index';
import { JobSpec, PROTOCOL_VERSION } from '../src/shared/protocol';

const LOAD_S = Number(process.argv[2] ?? process.env.HEARTH_BENCH_LOAD_S ?? 60);
const REPO = resolve(__dirname, '..');
const CLI = join(REPO, 'dist', 'cli.js');
const root = mkdtempSync(join(tmpdir(), 'hearth-bench-replicas-'));

interface Replica {
  proc: ChildProcess;
  url: string;
}

async function startReplica(dataDir: string, database?: string): Promise<Replica> {
  const proc = spawn(process.execPath, [CLI, '--data-dir', dataDir, 'broker', '--port', '0', ...(database ? ['--database', database] : [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HEARTH_BROKER_URL: '', HEARTH_TOKEN: '' },
  });
  let out = '';
  return new Promise((res, rej) => {
    const on = (c: Buffer) => {
      out += c.toString();
      if (process.env.HEARTH_BENCH_DEBUG) for (const l of c.toString().split('\n')) if (/"level":(50|40)/.test(l)) console.error(l.slice(0, 1500));
      const m = /broker listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) res({ proc, url: m[1]! });
    };
    proc.stderr!.on('data', on);
    proc.stdout!.on('data', on);
    proc.once('exit', () => rej(new Error(`broker exited: ${out.slice(-2000)}`)));
  });
}

function rssMiB(p: ChildProcess): { rss: number; peak: number } {
  const s = readFileSync(`/proc/${p.pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0) / 1024;
  return { rss: Math.round(kb('VmRSS')), peak: Math.round(kb('VmHWM')) };
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return;
  const done = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  await done;
}

async function api<T>(url: string, token: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** One scripted worker socket: hello, heartbeats, events with a window of unacknowledged ones. */
class Sock {
  ws!: WebSocket;
  workerId = '';
  private acked = new Map<string, number>();
  private waiters: (() => void)[] = [];
  jobs: string[] = [];
  private hb: NodeJS.Timeout | undefined;

  async connect(url: string, token: string, name: string): Promise<void> {
    this.ws = new WebSocket(url.replace('http', 'ws') + '/v1/worker/ws', { headers: { authorization: `Bearer ${token}` } });
    await new Promise((r, j) => {
      this.ws.once('open', r);
      this.ws.once('error', j);
    });
    const welcome = new Promise<{ workerId: string; heartbeatMs: number }>((r) => {
      this.ws.on('message', (m) => {
        const msg = JSON.parse(m.toString()) as { type: string; workerId: string; heartbeatMs: number; jobId: string; wseq: number; job: { jobId: string } };
        if (msg.type === 'welcome') r(msg);
        else if (msg.type === 'ack') {
          this.acked.set(msg.jobId, Math.max(this.acked.get(msg.jobId) ?? 0, msg.wseq));
          for (const w of this.waiters.splice(0)) w();
        } else if (msg.type === 'job') {
          this.jobs.push(msg.job.jobId);
          this.ws.send(JSON.stringify({ type: 'job-accepted', jobId: msg.job.jobId }));
          for (const w of this.waiters.splice(0)) w();
        } else if (msg.type === 'nack') {
          // Counted: the real worker would send again after retryMs; this one does not.
          nacks.count++;
          nacks.first ??= m.toString();
        }
      });
    });
    this.ws.send(JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, name, hostname: 'bench', version: '0', gpus: [{ index: 0, uuid: `u-${name}`, name: 'Bench GPU', memoryTotalMiB: 1, isGpu: true }], pricePerHour: 0, jobs: [] }));
    const w = await welcome;
    this.workerId = w.workerId;
    this.hb = setInterval(() => this.ws.send(JSON.stringify({ type: 'heartbeat', telemetry: [] })), w.heartbeatMs);
  }

  acks(jobId: string): number {
    return this.acked.get(jobId) ?? 0;
  }

  /** Resolves at the next ack or job message. */
  next(): Promise<void> {
    return new Promise((r) => this.waiters.push(r));
  }

  send(jobId: string, wseq: number, body: unknown): void {
    this.ws.send(`{"type":"event","jobId":"${jobId}","wseq":${wseq},"body":${JSON.stringify(body)}}`);
  }

  close(): void {
    clearInterval(this.hb);
    this.ws.close();
  }
}

/** A follower on the NDJSON route: counts log events, checks they come once and in order, measures latency. */
async function follow(url: string, token: string, jobId: string, latencies: number[]): Promise<{ logs: number[]; ok: boolean }> {
  const res = await fetch(`${url}/v1/jobs/${jobId}/events?follow=1`, { headers: { authorization: `Bearer ${token}` } });
  const logs: number[] = [];
  let lastSeq = 0;
  let ok = true;
  let buf = '';
  const dec = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += dec.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const m = JSON.parse(line) as { kind: string; event?: { seq: number; body: { type: string; data?: string } } };
      if (m.kind === 'end') return { logs, ok };
      if (m.kind !== 'event' || !m.event) continue;
      if (m.event.seq !== lastSeq + 1) ok = false;
      lastSeq = m.event.seq;
      if (m.event.body.type === 'log') {
        const t = /^(\d+) (\d+) /.exec(m.event.body.data ?? '');
        if (t) {
          logs.push(Number(t[1]));
          latencies.push(Date.now() - Number(t[2]));
        }
      }
    }
  }
  return { logs, ok };
}

const p99 = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]! : NaN;
};

const nacks: { count: number; first?: string } = { count: 0 };
const PAD = 'epoch 3 step 1200 loss 0.1234 lr 3e-4 '.repeat(6);

/** Part 1 on the given replicas: 20 workers stream `perJob` events each, 200 followers read them. */
async function eventLog(replicas: Replica[], dataDir: string, perJob: number) {
  const admin = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  const at = (i: number) => replicas[i % replicas.length]!.url;
  const { token: wt } = await api<{ token: string }>(at(0), admin, 'POST', '/v1/tokens', { kind: 'worker', label: 'bench' });
  const blob = Buffer.from('print(1)\n');
  const sha = createHash('sha256').update(blob).digest('hex');
  await fetch(`${at(0)}/v1/blobs/${sha}`, { method: 'PUT', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/octet-stream' }, body: blob });
  const W = 20;
  const socks: Sock[] = [];
  for (let i = 0; i < W; i++) {
    const s = new Sock();
    await s.connect(at(i), wt, `w${i}`);
    socks.push(s);
  }
  const jobs: string[] = [];
  for (let i = 0; i < W; i++) {
    // The renter uses the other replica than the worker's.
    const lease = await api<{ id: string }>(at(i + 1), admin, 'POST', '/v1/leases', { count: 1, hours: 1, workerId: socks[i]!.workerId });
    const job = await api<{ id: string }>(at(i + 1), admin, 'POST', '/v1/jobs', {
      leaseId: lease.id, entry: 'x.py', args: [], env: {}, outputs: [], logdir: 'runs',
      manifest: { files: [{ path: 'x.py', sha256: sha, size: blob.length, executable: false }] },
    });
    jobs.push(job.id);
  }
  for (let i = 0; i < W; i++) while (!socks[i]!.jobs.includes(jobs[i]!)) await socks[i]!.next();
  const latencies: number[] = [];
  const followers: Promise<{ logs: number[]; ok: boolean }>[] = [];
  for (let f = 0; f < 200; f++) followers.push(follow(at(f), admin, jobs[f % W]!, latencies));
  await new Promise((r) => setTimeout(r, 500));
  const t0 = Date.now();
  let appendedAt = 0;
  await Promise.all(
    socks.map(async (s, i) => {
      const jobId = jobs[i]!;
      let sent = 0;
      while (s.acks(jobId) < perJob + 1) {
        while (sent < perJob + 1 && sent - s.acks(jobId) < 64) {
          sent++;
          s.send(jobId, sent, sent <= perJob ? { type: 'log', stream: 'stdout', data: `${sent} ${Date.now()} ${PAD}\n` } : { type: 'status', status: 'succeeded', exitCode: 0 });
        }
        await s.next();
      }
    }),
  ).then(() => (appendedAt = Date.now()));
  const results = await Promise.all(followers);
  const deliveredAt = Date.now();
  for (const s of socks) s.close();
  const complete = results.every((r) => r.ok && r.logs.length === perJob && r.logs.every((x, i) => x === i + 1));
  const events = W * perJob;
  return {
    appendedPerS: events / ((appendedAt - t0) / 1000),
    deliveredPerS: (events * 10) / ((deliveredAt - t0) / 1000),
    p99: p99(latencies),
    complete,
    mem: replicas.map((r) => rssMiB(r.proc)),
  };
}

async function main(): Promise<void> {
  let cluster: string | undefined;
  let adminUrl = process.env.HEARTH_BENCH_DATABASE;
  if (!adminUrl) {
    // Under the repository's .test-tmp: the cluster runs as the `postgres` user, who cannot enter a 0700 temp dir of root's.
    cluster = join(REPO, '.test-tmp', 'bench-pg');
    const r = spawnSync('bash', [join(REPO, 'scripts', 'postgres-test.sh'), 'start', cluster, process.env.HEARTH_BENCH_PG_PORT ?? '55401'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`could not start PostgreSQL: ${r.stderr}`);
    adminUrl = r.stdout.trim();
  }
  const newDb = async () => {
    const name = `hearth_bench_${randomBytes(4).toString('hex')}`;
    const sql = postgres(adminUrl!, { max: 1, onnotice: () => {} });
    await sql.unsafe(`CREATE DATABASE ${name}`);
    await sql.end();
    const u = new URL(adminUrl!);
    u.pathname = `/${name}`;
    return u.toString();
  };
  const running: Replica[] = [];
  try {
    const PER_JOB = Number(process.env.HEARTH_BENCH_EVENTS ?? 1000);
    console.log(`1. event log: 20 workers × ${PER_JOB} events (~${PAD.length + 20} B), 200 followers (10 a job)`);
    const sqliteDir = join(root, 'sqlite');
    const one = await startReplica(sqliteDir);
    running.push(one);
    const s = await eventLog([one], sqliteDir, PER_JOB);
    await stop(one.proc);
    const pgDir = join(root, 'pg-replicas');
    const db = await newDb();
    const a = await startReplica(pgDir, db);
    const b = await startReplica(pgDir, db);
    running.push(a, b);
    const p = await eventLog([a, b], pgDir, PER_JOB);
    const row = (name: string, r: typeof s) =>
      `${name.padEnd(30)} ${Math.round(r.appendedPerS).toLocaleString('en').padStart(8)} appended/s ${Math.round(r.deliveredPerS).toLocaleString('en').padStart(9)} delivered/s  p99 ${r.p99} ms  complete: ${r.complete}  RSS ${r.mem.map((m) => `${m.rss} MiB`).join(' + ')}`;
    console.log(row('one SQLite broker', s));
    console.log(row('two PostgreSQL replicas', p));
    console.log(`ratio two PG replicas / one SQLite: appended ${(p.appendedPerS / s.appendedPerS).toFixed(2)}×, delivered ${(p.deliveredPerS / s.deliveredPerS).toFixed(2)}×, p99 ${(p.p99 / s.p99).toFixed(2)}×`);
    await stop(a.proc);
    await stop(b.proc);

    console.log(`\n2. load: 1 000 worker sockets (heartbeats, one event a second each) + 200 followers, ${LOAD_S} s, two PostgreSQL replicas`);
    const loadDb = await newDb();
    const loadDir = join(root, 'load');
    const la = await startReplica(loadDir, loadDb);
    const lb = await startReplica(loadDir, loadDb);
    running.push(la, lb);
    await load([la, lb], loadDir, loadDb);
  } finally {
    for (const r of running) await stop(r.proc).catch(() => {});
    if (cluster) {
      spawnSync('bash', [join(REPO, 'scripts', 'postgres-test.sh'), 'stop', cluster]);
      rmSync(cluster, { recursive: true, force: true });
    }
    rmSync(root, { recursive: true, force: true });
  }
}

async function load(replicas: Replica[], dataDir: string, database: string): Promise<void> {
  const admin = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  const at = (i: number) => replicas[i % replicas.length]!.url;
  const me = await api<{ accountId: string }>(at(0), admin, 'GET', '/v1/me');
  const { token: wt } = await api<{ token: string }>(at(0), admin, 'POST', '/v1/tokens', { kind: 'worker', label: 'load' });
  const N = 1000;
  const socks: Sock[] = [];
  const tConn = Date.now();
  for (let i = 0; i < N; i += 50) {
    const batch = Array.from({ length: Math.min(50, N - i) }, (_, k) => {
      const s = new Sock();
      socks[i + k] = s;
      return s.connect(at(i + k), wt, `load${i + k}`);
    });
    await Promise.all(batch);
  }
  console.log(`   ${N} workers connected in ${((Date.now() - tConn) / 1000).toFixed(1)} s`);
  // Leases and jobs straight into the database: the renter's path (offers, then a lease) is
  // measured in part 1; here it is the workers' streams that count.
  const store = await openPostgresStore(database);
  const jobs: string[] = [];
  const now = Date.now();
  const spec = JSON.stringify(JobSpec.parse({ entry: 'x.py', manifest: { files: [] } }));
  for (let i = 0; i < N; i++) {
    const w = socks[i]!.workerId;
    const leaseId = `lease_load${String(i).padStart(8, '0')}`;
    const jobId = `job_load${String(i).padStart(8, '0')}`;
    await store.leases.insert({ id: leaseId, account_id: me.accountId, worker_id: w, gpu_model: 'Bench GPU', gpu_indices: '[0]', count: 1, price_per_hour: 0, created_at: now, expires_at: now + 3_600_000 });
    await store.jobs.insert({ id: jobId, account_id: me.accountId, lease_id: leaseId, worker_id: w, entry: 'x.py', kind: 'job', created_at: now }, spec, []);
    jobs.push(jobId);
  }
  await store.close();
  const latencies: number[] = [];
  const F = 200;
  // Followers on the other replica than the job's worker: every event crosses replicas.
  const followers = Array.from({ length: F }, (_, f) => follow(at(f + 1), admin, jobs[f]!, latencies));
  await new Promise((r) => setTimeout(r, 1000));
  const sent = new Array<number>(N).fill(0);
  const stopAt = Date.now() + LOAD_S * 1000;
  await Promise.all(
    socks.map(async (s, i) => {
      await new Promise((r) => setTimeout(r, Math.random() * 1000));
      while (Date.now() < stopAt) {
        sent[i]!++;
        s.send(jobs[i]!, sent[i]!, { type: 'log', stream: 'stdout', data: `${sent[i]} ${Date.now()} ${PAD}\n` });
        await new Promise((r) => setTimeout(r, 1000));
      }
      sent[i]!++;
      s.send(jobs[i]!, sent[i]!, { type: 'status', status: 'succeeded', exitCode: 0 });
      const until = Date.now() + 120_000;
      while (s.acks(jobs[i]!) < sent[i]! && Date.now() < until) await Promise.race([s.next(), new Promise((r) => setTimeout(r, 1000))]);
    }),
  );
  const results = await Promise.all(followers);
  const mem = replicas.map((r) => rssMiB(r.proc));
  for (const s of socks) s.close();
  const total = sent.reduce((a, b) => a + b, 0);
  const acked = socks.reduce((a, s, i) => a + s.acks(jobs[i]!), 0);
  const followedOk = results.every((r, f) => r.ok && r.logs.length === sent[f]! - 1 && r.logs.every((x, i) => x === i + 1));
  console.log(`   events sent ${total.toLocaleString('en')}, acked ${acked.toLocaleString('en')} (lost: ${total - acked}); refused by the broker (nack): ${nacks.count}${nacks.first ? `, e.g. ${nacks.first}` : ''}`);
  console.log(`   followers: ${results.length}, every event once and in order: ${followedOk}; p99 delivery ${p99(latencies)} ms over ${latencies.length.toLocaleString('en')} deliveries`);
  console.log(`   replica memory: ${mem.map((m, i) => `${'AB'[i]} ${m.rss} MiB (peak ${m.peak})`).join(', ')}`);
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
