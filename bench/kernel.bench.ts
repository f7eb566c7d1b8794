// A kernel session's round trip: `1+1` executed in a warm kernel through the broker and the worker
// (POST the request, follow the session's event log until its execute_reply), median and p99,
// against the same request to a local kernel through jupyter_client in the same run (the floor:
// what Jupyter itself costs). Then a cell printing 200 000 lines: every line arrives, in order,
// and what the following client holds stays bounded.
// Run: node --import tsx bench/kernel.bench.ts [rounds]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BrokerClient } from '../src/client/api';
import { startBroker } from '../src/broker/server';
import type { JobEvent } from '../src/shared/protocol';

const ROUNDS = Number(process.argv[2] ?? 200);
const PYTHON = '/usr/bin/python3';
const CLI = join(__dirname, '..', 'dist', 'cli.js');

const LOCAL = `
import json, sys, time
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name="python3")
for _ in range(5):
    kc.execute_interactive("1+1", timeout=30, output_hook=lambda m: None)
out = []
for _ in range(${ROUNDS}):
    t = time.perf_counter()
    kc.execute_interactive("1+1", timeout=30, output_hook=lambda m: None)
    out.append((time.perf_counter() - t) * 1000)
kc.stop_channels(); km.shutdown_kernel(now=True)
print("RESULT " + json.dumps(out))
`;

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function main(): Promise<void> {
  const local = spawnSync(PYTHON, ['-c', LOCAL], { encoding: 'utf8', env: { ...process.env, PYDEVD_DISABLE_FILE_VALIDATION: '1' } });
  if (local.status !== 0) throw new Error(`local jupyter_client baseline failed (is python3-ipykernel installed?): ${local.stderr.slice(-500)}`);
  const localMs = JSON.parse(/RESULT (.*)/.exec(local.stdout)![1]!) as number[];

  const dir = mkdtempSync(join(tmpdir(), 'hearth-bench-kernel-'));
  const broker = await startBroker({ dataDir: join(dir, 'broker'), port: 0 });
  const client = new BrokerClient({ url: broker.url, token: broker.adminToken! });
  const { token } = await client.createToken('worker', 'bench');
  const worker = spawn(process.execPath, [CLI, '--broker', broker.url, '--token', token, 'worker', '--work-dir', join(dir, 'worker'), '--python', PYTHON, '--nvidia-smi', join(dir, 'none')], { stdio: 'ignore' });
  try {
    for (let i = 0; (await client.offers()).length === 0; i++) {
      if (i > 200) throw new Error('the worker did not connect');
      await new Promise((r) => setTimeout(r, 100));
    }
    const lease = await client.createLease({ count: 1, hours: 1 });
    const session = await client.startKernel({ leaseId: lease.id, idleMinutes: 0 });
    // One follower for the whole run, as the editor keeps; each round waits for its reply.
    const waiting = new Map<string, () => void>();
    let idle: () => void = () => {};
    const ready = new Promise<void>((r) => (idle = r));
    let lines = 0;
    let ordered = true;
    let bigDone: () => void = () => {};
    let bigId = '';
    let peakHeap = 0;
    const ac = new AbortController();
    const follow = (async () => {
      for await (const e of client.events(session.id, { follow: true, signal: ac.signal }) as AsyncIterable<JobEvent>) {
        const b = e.body;
        if (b.type !== 'kernel') continue;
        if (b.requestId === null && b.msgType === 'status' && b.content.execution_state === 'idle') idle();
        if (b.requestId === bigId && b.msgType === 'stream') {
          for (const l of String(b.content.text).split('\n')) {
            if (!l) continue;
            if (l !== `line ${lines}`) ordered = false;
            lines++;
          }
          peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
        }
        if (b.msgType === 'execute_reply' && b.requestId) {
          if (b.requestId === bigId) bigDone();
          waiting.get(b.requestId)?.();
        }
      }
    })().catch(() => undefined);
    await ready;
    const run = async (code: string) => {
      let done!: () => void;
      const replied = new Promise<void>((r) => (done = r));
      const t = performance.now();
      const { requestId } = await client.kernelRequest(session.id, { type: 'execute', code });
      waiting.set(requestId, done);
      await replied;
      waiting.delete(requestId);
      return performance.now() - t;
    };
    for (let i = 0; i < 5; i++) await run('1+1');
    const hearthMs: number[] = [];
    for (let i = 0; i < ROUNDS; i++) hearthMs.push(await run('1+1'));

    const N = 200_000;
    const heapBefore = process.memoryUsage().heapUsed;
    const finished = new Promise<void>((r) => (bigDone = r));
    const t0 = performance.now();
    bigId = (await client.kernelRequest(session.id, { type: 'execute', code: `for i in range(${N}):\n    print(f"line {i}")` })).requestId;
    await finished;
    const bigS = (performance.now() - t0) / 1000;
    ac.abort();
    await follow;

    const f = (x: number) => `${x.toFixed(1)} ms`;
    console.log(`round trip of 1+1 in a warm kernel, ${ROUNDS} rounds`);
    console.log(`  local jupyter_client (floor)        median ${f(pct(localMs, 50))}, p99 ${f(pct(localMs, 99))}`);
    console.log(`  through broker and worker           median ${f(pct(hearthMs, 50))}, p99 ${f(pct(hearthMs, 99))}`);
    console.log(`  added by Hearth                     median ${f(pct(hearthMs, 50) - pct(localMs, 50))}, p99 ${f(pct(hearthMs, 99) - pct(localMs, 99))}  (aim: < 10 ms, < 30 ms)`);
    console.log(`a cell printing ${N} lines: ${lines} arrived${ordered ? ', in order' : ', OUT OF ORDER'}, in ${bigS.toFixed(1)} s; client heap grew by at most ${((peakHeap - heapBefore) / 1048576).toFixed(1)} MiB`);
    if (lines !== N || !ordered) process.exitCode = 1;
  } finally {
    worker.kill('SIGTERM');
    await new Promise((r) => worker.once('exit', r));
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
