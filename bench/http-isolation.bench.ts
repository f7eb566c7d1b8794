// How much one client's large body slows everyone else: the latency of GET /v1/health (p50/p99 of
// sequential requests on a kept-alive connection) while another process keeps sending 64 MB bodies
//   a. as an authenticated blob upload (streamed to disk, hashed on the way),
//   b. unauthenticated, to a JSON route (refused before it is read),
//   c. authenticated, to a JSON route with a small body limit (refused as too large),
// each printed next to, and as a ratio to, the same requests with no load in the same run.
// A refused body ends in a millisecond, so b and c run twice: paced (a new 64 MB body every 50 ms,
// about 1.3 GB/s offered) and as a closed-loop flood (the next one as soon as one is refused),
// which on a small machine measures CPU contention between three processes as much as the broker.
// The aim is a p99 under 50 ms. Figures only: nothing here asserts a time.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { startBrokerProc, stopProcess, tempDir } from '../test/integration/helpers';

const BODY = 64 * 1024 * 1024;
const N = Number(process.env.HEARTH_BENCH_N ?? 1000);

type Mode = 'blob' | 'unauth-json' | 'auth-json';

/** One 64 MB request after another until killed: run in a child so its writes do not slow our clock. */
async function load(mode: Mode, url: string, token: string, paceMs: number): Promise<void> {
  const data = randomBytes(BODY);
  const sha = createHash('sha256').update(data).digest('hex');
  const target =
    mode === 'blob'
      ? { method: 'PUT', path: `/v1/blobs/${sha}`, headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${token}` } }
      : { method: 'POST', path: '/v1/jobs', headers: { 'content-type': 'application/json', ...(mode === 'auth-json' ? { authorization: `Bearer ${token}` } : {}) } };
  let sent = 0;
  for (;;) {
    await new Promise<void>((res) => {
      const req = request(`${url}${target.path}`, { method: target.method, headers: { ...target.headers, 'content-length': BODY } }, (r) => {
        r.resume();
        r.on('end', res);
        r.on('error', () => res());
      });
      req.on('error', () => res());
      req.end(data);
    });
    sent++;
    if (sent % 5 === 0) process.stderr.write(`.`);
    if (paceMs) await new Promise((r) => setTimeout(r, paceMs));
  }
}

async function latencies(url: string, n: number): Promise<number[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await new Promise<void>((res, rej) => {
      const req = request(`${url}/v1/health`, { agent }, (r) => {
        r.resume();
        r.on('end', res);
      });
      req.on('error', rej);
      req.end();
    });
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  agent.destroy();
  return out.sort((a, b) => a - b);
}

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

async function main(): Promise<void> {
  if (process.argv[2] === '--load') return load(process.argv[3] as Mode, process.argv[4]!, process.argv[5]!, Number(process.argv[6]));
  const b = await startBrokerProc(tempDir('bench-http'));
  const loaders: ChildProcess[] = [];
  try {
    await latencies(b.url, 200); // warm-up
    const idle = await latencies(b.url, N);
    const i50 = pct(idle, 50);
    const i99 = pct(idle, 99);
    console.log(`GET /v1/health, ${N} sequential requests, no load: p50 ${i50.toFixed(2)} ms, p99 ${i99.toFixed(2)} ms`);
    const runs: [Mode, number][] = [['blob', 0], ['unauth-json', 50], ['auth-json', 50], ['unauth-json', 0], ['auth-json', 0]];
    for (const [mode, paceMs] of runs) {
      const child = spawn(process.execPath, ['--import', 'tsx', __filename, '--load', mode, b.url, b.adminToken, String(paceMs)], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      loaders.push(child);
      let dots = 0;
      child.stderr.on('data', (c: Buffer) => (dots += c.toString().split('.').length - 1));
      // The loader has begun sending before the clock starts.
      await new Promise((r) => setTimeout(r, 1500));
      const busy = await latencies(b.url, N);
      await stopProcess(child, 'SIGKILL');
      const b50 = pct(busy, 50);
      const b99 = pct(busy, 99);
      const label = { blob: 'authenticated 64 MB blob uploads', 'unauth-json': 'unauthenticated 64 MB bodies to POST /v1/jobs', 'auth-json': 'authenticated 64 MB bodies to POST /v1/jobs (over its 32 MiB limit)' }[mode];
      console.log(
        `  while another process sends ${label}, ${mode === 'blob' ? 'back to back' : paceMs ? `one every ${paceMs} ms` : 'as a flood'} (${dots * 5}+ sent): p50 ${b50.toFixed(2)} ms (${(b50 / i50).toFixed(2)}× idle), ` +
          `p99 ${b99.toFixed(2)} ms (${(b99 / i99).toFixed(2)}× idle)${b99 < 50 ? '' : '  ← p99 over the 50 ms aim'}`,
      );
    }
  } finally {
    for (const c of loaders) await stopProcess(c, 'SIGKILL');
    await stopProcess(b.proc);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
