// What a network of its own costs a session (issue 14), against today's shared network in the same
// run: a real broker and two real workers in this process, both sandboxed under bwrap with the same
// interpreter and limits, one giving each session a namespace with slirp4netns (--job-network
// internet), the other sharing the host's network as workers did before. Rounds alternate between
// them. Figures:
//   1. a job's first log line, from its submission (workspace already uploaded)
//   2. a kernel's first `1+1`: from asking for the kernel to the execute_reply of its first cell
// (aim: under 100 ms added). Needs root, bubblewrap and slirp4netns; says so and exits otherwise.
// Run: node --import tsx bench/session-network.bench.ts [rounds]
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BrokerClient } from '../src/client/api';
import { uploadWorkspace } from '../src/client/workspace';
import { startBroker } from '../src/broker/server';
import { startWorker, type RunningWorker } from '../src/worker/main';

const ROUNDS = Number(process.argv[2] ?? 10);
const PYTHON = '/usr/bin/python3';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const ok = (c: string, a: string[]) => spawnSync(c, a, { stdio: 'ignore' }).status === 0;
  if (process.getuid?.() !== 0 || !ok('bwrap', ['--ro-bind', '/', '/', 'true']) || !ok('slirp4netns', ['--version'])) {
    console.log('skipped: needs root, bubblewrap and slirp4netns (scripts/setup.sh installs them)');
    return;
  }
  const tmp = join(__dirname, '..', '.test-tmp');
  mkdirSync(tmp, { recursive: true });
  const dir = mkdtempSync(join(tmp, 'bench-netns-'));
  const broker = await startBroker({ dataDir: join(dir, 'broker'), port: 0 });
  const client = new BrokerClient({ url: broker.url, token: broker.adminToken! });
  const workers: RunningWorker[] = [];
  try {
    const ids: Record<'own' | 'shared', string> = { own: '', shared: '' };
    for (const [name, jobNetwork] of [['own', 'internet'], ['shared', 'host']] as const) {
      const { token } = await client.createToken('worker', name);
      const w = startWorker({
        brokerUrl: broker.url,
        token,
        name,
        workDir: join(dir, name),
        hidePaths: [join(dir, 'broker')],
        python: PYTHON,
        nvidiaSmi: join(dir, 'none'),
        sandbox: 'bwrap',
        jobNetwork,
        log: () => undefined,
      });
      workers.push(w);
      ids[name] = await w.workerId;
    }
    const ws = join(dir, 'ws');
    mkdirSync(ws);
    writeFileSync(join(ws, 'first.py'), 'print("first", flush=True)\n');
    const manifest = await uploadWorkspace(client, ws);
    const leases = {
      own: (await client.createLease({ workerId: ids.own, count: 1, hours: 1 })).id,
      shared: (await client.createLease({ workerId: ids.shared, count: 1, hours: 1 })).id,
    };

    const firstLine = async (which: 'own' | 'shared'): Promise<number> => {
      const t0 = performance.now();
      const job = await client.submitJob({ leaseId: leases[which], entry: 'first.py', args: [], env: {}, outputs: [], logdir: 'runs', manifest: { files: manifest.files } });
      let t = 0;
      for await (const e of client.events(job.id, { follow: true })) {
        if (!t && e.body.type === 'log' && e.body.data.includes('first')) t = performance.now() - t0;
        if (e.body.type === 'status' && !['queued', 'running'].includes(e.body.status)) break;
      }
      if (!t) throw new Error(`the job on the ${which} network printed nothing`);
      return t;
    };
    const firstCell = async (which: 'own' | 'shared'): Promise<number> => {
      const t0 = performance.now();
      const k = await client.startKernel({ leaseId: leases[which] });
      const ac = new AbortController();
      let rid: string | undefined;
      let t = 0;
      // Asked at once: the request waits for the kernel, as a notebook's first cell does.
      const asked = client.kernelRequest(k.id, { type: 'execute', code: '1+1' }).then((r) => (rid = r.requestId));
      for await (const e of client.events(k.id, { follow: true, signal: ac.signal })) {
        await asked;
        if (e.body.type === 'kernel' && e.body.requestId === rid && e.body.msgType === 'execute_reply') {
          t = performance.now() - t0;
          break;
        }
      }
      ac.abort();
      await client.cancelJob(k.id);
      for await (const e of client.events(k.id, { follow: true })) if (e.body.type === 'status' && !['queued', 'running'].includes(e.body.status)) break;
      return t;
    };

    // Warm-up: each worker's first session (interpreter location, page cache) is not the figure.
    for (const w of ['own', 'shared'] as const) {
      await firstLine(w);
      await firstCell(w);
    }
    const lines = { own: [] as number[], shared: [] as number[] };
    const cells = { own: [] as number[], shared: [] as number[] };
    for (let i = 0; i < ROUNDS; i++) {
      for (const w of (i % 2 ? ['own', 'shared'] : ['shared', 'own']) as ('own' | 'shared')[]) lines[w].push(await firstLine(w));
    }
    for (let i = 0; i < Math.max(3, Math.ceil(ROUNDS / 2)); i++) {
      for (const w of (i % 2 ? ['own', 'shared'] : ['shared', 'own']) as ('own' | 'shared')[]) cells[w].push(await firstCell(w));
    }
    const f = (x: number) => `${x.toFixed(0)} ms`;
    const row = (what: string, m: { own: number[]; shared: number[] }) => {
      const own = median(m.own);
      const shared = median(m.shared);
      console.log(`${what.padEnd(34)} shared ${f(shared).padStart(7)}   own network ${f(own).padStart(7)}   added ${f(own - shared).padStart(6)} (${(own / shared).toFixed(2)}x)  (aim: < 100 ms added)`);
    };
    console.log(`medians of ${ROUNDS} jobs and ${cells.own.length} kernels on each network, alternating`);
    row('job: submit to first log line', lines);
    row('kernel: start to first 1+1 reply', cells);
  } finally {
    for (const w of workers) await w.stop();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
