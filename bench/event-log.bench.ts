// Event-log append throughput with the strict ordering (an event of the worker's is taken only as
// last_wseq + 1, one transaction each), against baselines in the same process:
//  - the floor: the same rows inserted into the same SQLite file with one bare INSERT and commit
//    per event, no job row read, no ordering check;
//  - end to end: a worker socket on a real loopback port pipelining events to the broker, which
//    appends each and acks it (a window of unacknowledged events, as the real worker keeps).
// Run: node --import tsx bench/event-log.bench.ts [events]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import WebSocket from 'ws';
import { startBroker } from '../src/broker/server';
import { PROTOCOL_VERSION } from '../src/shared/protocol';

const N = Number(process.argv[2] ?? 50_000);
const LINE = 'epoch 3 step 1200 loss 0.1234 lr 3e-4 '.repeat(3) + '\n'; // ~120 bytes, a typical batch is a few lines
const DATA = LINE.repeat(8);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-log-'));
  try {
    const b = await startBroker({ dataDir: join(dir, 'broker'), port: 0 });
    const admin = (await b.broker.authenticate(b.adminToken))!;
    const workerToken = await b.broker.createToken(admin.accountId, 'worker', 'bench');
    const sha = 'a'.repeat(64);
    await b.broker.recordBlob(sha, 1, admin.accountId);
    const manifest = { files: [{ path: 'x.py', sha256: sha, size: 1, executable: false }] };

    // A worker socket, so the broker sees the worker online and the job is assigned to it.
    const ws = new WebSocket(b.url.replace('http', 'ws') + '/v1/worker/ws', { headers: { authorization: `Bearer ${workerToken}` } });
    await new Promise((r) => ws.once('open', r));
    const inbox: { type: string; jobId?: string; wseq?: number }[] = [];
    let wake: (() => void) | undefined;
    ws.on('message', (m) => {
      inbox.push(JSON.parse(m.toString()) as { type: string });
      wake?.();
    });
    const next = async (pred: (m: { type: string; jobId?: string; wseq?: number }) => boolean) => {
      for (;;) {
        const i = inbox.findIndex(pred);
        if (i >= 0) return inbox.splice(i, 1)[0]!;
        await new Promise<void>((r) => (wake = r));
      }
    };
    ws.send(JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, name: 'bench', hostname: 'bench', version: '0', gpus: [{ index: 0, uuid: 'u', name: 'CPU', memoryTotalMiB: 1, isGpu: false }, { index: 1, uuid: 'v', name: 'CPU', memoryTotalMiB: 1, isGpu: false }], pricePerHour: 0, jobs: [] }));
    const welcome = (await next((m) => m.type === 'welcome')) as unknown as { workerId: string };
    const job = async () => {
      const lease = await b.broker.createLease(admin, { count: 1, hours: 1, workerId: welcome.workerId });
      return (await b.broker.submitJob(admin, { leaseId: lease.id, entry: 'x.py', args: [], env: {}, outputs: [], logdir: 'runs', manifest })).id;
    };

    const body = { type: 'log' as const, stream: 'stdout' as const, data: DATA };
    const bytes = N * DATA.length;

    // 1. The domain's append, strict ordering.
    const j1 = await job();
    let t0 = process.hrtime.bigint();
    for (let i = 1; i <= N; i++) await b.broker.events.append(j1, body, i);
    const appendS = Number(process.hrtime.bigint() - t0) / 1e9;

    // A job whose manifest lists 20 000 files (megabytes of spec): appends must not rewrite it.
    const files = Array.from({ length: 20_000 }, (_, i) => ({ path: `src/pkg_${i >> 8}/file_${i}.py`, sha256: sha, size: 1, executable: false }));
    const bigLease = await b.broker.createLease(admin, { count: 1, hours: 1, workerId: welcome.workerId });
    const big = (await b.broker.submitJob(admin, { leaseId: bigLease.id, entry: 'x.py', args: [], env: {}, outputs: [], logdir: 'runs', manifest: { files } })).id;
    const M = Math.min(N, 10_000);
    t0 = process.hrtime.bigint();
    for (let i = 1; i <= M; i++) await b.broker.events.append(big, body, i);
    const bigS = (Number(process.hrtime.bigint() - t0) / 1e9) * (N / M);
    await b.broker.releaseLease(admin, bigLease.id);

    // The floor: bare inserts into the same database file, one commit each.
    const raw = new Database(join(dir, 'broker', 'broker.db'));
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = NORMAL');
    const ins = raw.prepare('INSERT INTO events (job_id, seq, ts, body) VALUES (?, ?, ?, ?)');
    const text = JSON.stringify(body);
    t0 = process.hrtime.bigint();
    for (let i = 1; i <= N; i++) ins.run('job_rawbaseline01', i, Date.now(), text);
    const rawS = Number(process.hrtime.bigint() - t0) / 1e9;
    raw.close();

    // A refused skip ahead costs a read, no write.
    t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) await b.broker.events.append(j1, body, N + 10);
    const gapS = Number(process.hrtime.bigint() - t0) / 1e9;

    // 2. End to end over the worker socket, 256 events in flight.
    const j2 = await job();
    await next((m) => m.type === 'job' && (m as unknown as { job: { jobId: string } }).job.jobId === j2);
    ws.send(JSON.stringify({ type: 'job-accepted', jobId: j2 }));
    const WINDOW = 256;
    let acked = 0;
    let sent = 0;
    t0 = process.hrtime.bigint();
    const pre = (w: number) => `{"type":"event","jobId":"${j2}","wseq":${w},"body":${text}}`;
    while (acked < N) {
      while (sent < N && sent - acked < WINDOW) ws.send(pre(++sent));
      const m = await next((x) => (x.type === 'ack' || x.type === 'nack') && x.jobId === j2);
      if (m.type === 'nack') throw new Error('unexpected refusal');
      acked = Math.max(acked, m.wseq!);
    }
    const socketS = Number(process.hrtime.bigint() - t0) / 1e9;
    const stored = (await b.broker.events.job(j2))!.last_seq;
    ws.close();
    await b.close();

    const fmt = (s: number) => `${Math.round(N / s).toLocaleString('en')} events/s, ${(bytes / 1e6 / s).toFixed(1)} MB/s`;
    console.log(`events: ${N} of ${DATA.length} bytes`);
    console.log(`bare SQLite insert + commit (floor)      ${fmt(rawS)}`);
    console.log(`EventLog.append, strict ordering          ${fmt(appendS)}  (${(rawS / appendS).toFixed(2)}× the floor)`);
    console.log(`… to a job of 20 000 manifest files       ${fmt(bigS)}  (${(appendS / bigS).toFixed(2)}× slower than a 1-file job)`);
    console.log(`refused skip-ahead (read only)            ${Math.round(N / gapS).toLocaleString('en')} refusals/s`);
    console.log(`worker socket → append → ack, window 256  ${fmt(socketS)}  (${(appendS / socketS).toFixed(2)}× direct append); ${stored - 1} stored`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
