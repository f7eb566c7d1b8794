// Environments built from a run's requirements, against a real broker and worker (separate
// processes on loopback), real pip and a wheelhouse built here (pip's own configuration offers it
// to the worker: PIP_NO_INDEX, PIP_FIND_LINKS), each figure against a baseline in this process:
//   1. time to the first log line of a run whose requirements are already installed on the worker
//      vs the same run with no requirements (aim: under 100 ms added)
//   2. the first install (the run's setup phase, as the broker's event timestamps put it) vs the
//      same install done by hand: `python3 -m venv --without-pip --system-site-packages` + `pip install -r`
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BrokerClient } from '../src/client/api';
import { spawnHearth, startBrokerProc, stopProcess, waitForOutput } from '../test/integration/helpers';
import { buildWheel, SYSTEM_PYTHON } from '../test/integration/wheelhouse';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

async function main(): Promise<void> {
  const tmp = join(__dirname, '..', '.test-tmp');
  mkdirSync(tmp, { recursive: true });
  const dir = mkdtempSync(join(tmp, 'bench-envs-'));
  chmodSync(dir, 0o755);
  const wheelhouse = join(dir, 'wheelhouse');
  for (const n of ['alpha', 'beta', 'gamma', 'delta']) buildWheel(dir, wheelhouse, `hb${n}`, '1.0.0', n);
  const reqText = 'hbalpha\nhbbeta\nhbgamma\nhbdelta\n';
  const pipEnv = { PIP_NO_INDEX: '1', PIP_FIND_LINKS: wheelhouse };
  const broker = await startBrokerProc(join(dir, 'broker'));
  const admin = new BrokerClient({ url: broker.url, token: broker.adminToken });
  const { token } = await admin.createToken('worker', 'bench');
  const worker = spawnHearth(['--broker', broker.url, 'worker', '--work-dir', join(dir, 'worker'), '--python', SYSTEM_PYTHON, '--nvidia-smi', join(dir, 'none')], { HEARTH_TOKEN: token, ...pipEnv });
  const cli = { HEARTH_BROKER_URL: broker.url, HEARTH_TOKEN: broker.adminToken, HEARTH_DATA_DIR: join(dir, 'cli') };
  try {
    await waitForOutput(worker, /connected to the broker/);
    await admin.createLease({ count: 1, hours: 1 });
    const project = (name: string, files: Record<string, string>) => {
      const ws = join(dir, name);
      mkdirSync(ws, { recursive: true });
      for (const [f, t] of Object.entries(files)) writeFileSync(join(ws, f), t);
      return join(ws, 'first.py');
    };
    const firstLine = async (script: string): Promise<{ t: number; jobId: string }> => {
      const t0 = process.hrtime.bigint();
      const p = spawnHearth(['run', script], cli);
      const [, jobId] = (await waitForOutput(p, /^(job_\w+)$/m, 120_000)) as RegExpMatchArray;
      await waitForOutput(p, /^first$/m, 120_000);
      const t = ms(t0);
      const code = await new Promise<number | null>((r) => p.on('close', (c) => r(c)));
      if (code !== 0) throw new Error(`hearth run ${script} exited with ${code}`);
      return { t, jobId: jobId! };
    };

    // ---- 1. a cached environment vs none
    const plain = project('plain', { 'first.py': 'print("first")\n' });
    const withReq = project('with-req', { 'first.py': 'import hbalpha\nprint("first")\n', 'requirements.txt': reqText });
    await firstLine(plain); // uploads
    await firstLine(withReq); // uploads and installs
    const a: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < 7; i++) {
      a.push((await firstLine(plain)).t);
      b.push((await firstLine(withReq)).t);
    }
    const [ma, mb] = [median(a), median(b)];
    console.log(`first log line: no requirements ${ma.toFixed(0)} ms, requirements already installed ${mb.toFixed(0)} ms (median of 7) → +${(mb - ma).toFixed(0)} ms, ${(mb / ma).toFixed(2)}×`);

    // ---- 2. the first install vs by hand
    const installs: number[] = [];
    const byHand: number[] = [];
    for (let i = 0; i < 3; i++) {
      // A comment makes the requirements new to the worker: a fresh environment each round.
      const script = project(`fresh-${i}`, { 'first.py': 'import hbalpha\nprint("first")\n', 'requirements.txt': `# round ${i}\n${reqText}` });
      const { jobId } = await firstLine(script);
      const ts: Record<string, number> = {};
      for await (const e of admin.events(jobId, { follow: false })) if (e.body.type === 'setup') ts[e.body.phase] = e.ts;
      installs.push(ts.ready! - ts.installing!);
      const venv = join(dir, `by-hand-${i}`);
      writeFileSync(join(dir, 'req.txt'), reqText);
      const t0 = process.hrtime.bigint();
      execFileSync(SYSTEM_PYTHON, ['-m', 'venv', '--without-pip', '--system-site-packages', venv]);
      execFileSync(join(venv, 'bin', 'python'), ['-m', 'pip', 'install', '-q', '-r', join(dir, 'req.txt')], { env: { ...process.env, ...pipEnv } });
      byHand.push(ms(t0));
    }
    const [mi, mh] = [median(installs), median(byHand)];
    console.log(`first install (4 wheels): setup phase of the run ${mi.toFixed(0)} ms, by hand (venv + pip install) ${mh.toFixed(0)} ms (median of 3) → +${(mi - mh).toFixed(0)} ms, ${(mi / mh).toFixed(2)}×`);
  } finally {
    await stopProcess(worker);
    await stopProcess(broker.proc);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
