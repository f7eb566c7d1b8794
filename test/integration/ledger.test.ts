// The ledger with a real broker (prepaid credit), a real worker and real python3, driven through
// the `hearth` CLI: a renter without credits gets no lease, a grant and a signed payment credit
// once per key, a lease's escrow pays the provider (less the broker's fee) and returns the rest,
// and balance, earnings and ledger (JSON and CSV) say so. The recorded nvidia-smi stands in for
// the GPU this machine lacks; the worker's price (3600 cr/h) makes costs come in seconds.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { BrokerClient } from '../../src/client/api';
import { webhookSignature } from '../../src/broker/routes/ledger';
import { startBroker, type RunningBroker } from '../../src/broker/server';
import { Balance, EarningsRow, LedgerPosting } from '../../src/shared/protocol';
import { startWorker, type RunningWorker } from '../../src/worker/main';
import { backendFor } from '../backend';
import { hearth, waitFor } from './helpers';

const FAKE_SMI = join(__dirname, '..', 'fixtures', 'nvidia-smi', 'fake-nvidia-smi');
const SECRET = 'a-payment-provider-shared-secret';

describe('ledger (integration)', function () {
  this.timeout(180_000);
  let dir: string;
  let broker: RunningBroker;
  let worker: RunningWorker;
  let admin: BrokerClient;
  let renterEnv: Record<string, string>;
  let providerEnv: Record<string, string>;
  let adminEnv: Record<string, string>;
  let workerId: string;

  before(async () => {
    dir = mkdtempSync(join(os.tmpdir(), 'hearth-ledger-'));
    const dataDir = join(dir, 'broker');
    broker = await startBroker({ ...(await backendFor(dataDir)), dataDir, port: 0, meterMs: 100, credit: 'prepaid', paymentWebhookSecret: SECRET });
    admin = new BrokerClient({ url: broker.url, token: broker.adminToken! });
    const provider = await admin.createAccount('provider');
    const renter = await admin.createAccount('renter');
    const env = (token: string, name: string) => ({ HEARTH_BROKER_URL: broker.url, HEARTH_TOKEN: token, HEARTH_DATA_DIR: join(dir, `cli-${name}`) });
    renterEnv = env(renter.token, 'renter');
    providerEnv = env(provider.token, 'provider');
    adminEnv = env(broker.adminToken!, 'admin');
    const { token } = await new BrokerClient({ url: broker.url, token: provider.token }).createToken('worker', 'gpu host');
    worker = startWorker({ brokerUrl: broker.url, token, workDir: join(dir, 'work'), name: 'pricey', nvidiaSmi: FAKE_SMI, pricePerHour: 3600, killGraceMs: 2000, log: () => undefined });
    workerId = await worker.workerId;
    mkdirSync(join(dir, 'ws'));
    writeFileSync(join(dir, 'ws', 'short.py'), 'print("done")\n');
  });
  after(async () => {
    await worker?.stop();
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const pay = (body: string, sig = webhookSignature(SECRET, Math.floor(Date.now() / 1000), body)) =>
    fetch(`${broker.url}/v1/ledger/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', 'hearth-signature': sig }, body });
  const balance = async (env: Record<string, string>) => Balance.parse(JSON.parse((await hearth(['--json', 'balance'], env)).stdout));

  it('a renter with no credits, or 1, cannot run an hour; a grant and a payment credit once per key; a bad signature credits nothing', async () => {
    const none = await hearth(['run', join(dir, 'ws', 'short.py')], renterEnv);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /insufficient_balance: this lease holds 3600 cr in escrow \(its cost for 60 min\) and the account's balance is 0 cr/);
    const granted = await hearth(['admin', 'grant', 'renter', '1', '--key', 'g1'], adminEnv);
    assert.equal(granted.code, 0, granted.stderr);
    assert.match(granted.stdout, /^granted; renter \(acct_\w+\) has 1 cr/);
    assert.match((await hearth(['admin', 'grant', 'renter', '1', '--key', 'g1'], adminEnv)).stdout, /^already granted \(same key\); renter .* has 1 cr/);
    const one = await hearth(['run', join(dir, 'ws', 'short.py')], renterEnv);
    assert.notEqual(one.code, 0);
    assert.match(one.stderr, /insufficient_balance: .* balance is 1 cr/);
    // Only an admin grants.
    assert.match((await hearth(['admin', 'grant', 'renter', '5'], renterEnv)).stderr, /only an admin/);

    const body = JSON.stringify({ id: 'pay_001', account: 'renter', credits: 100 });
    assert.equal((await pay(body)).status, 201);
    assert.equal((await pay(body)).status, 200, 'the same payment again credits nothing');
    assert.equal((await pay(body, webhookSignature('another-secret-entirely', Math.floor(Date.now() / 1000), body))).status, 401);
    assert.equal((await pay(body, webhookSignature(SECRET, Math.floor(Date.now() / 1000) - 3600, body))).status, 401, 'an old signature is refused');
    assert.equal((await pay(JSON.stringify({ id: 'pay_002', account: 'renter', credits: 100 }), webhookSignature(SECRET, Math.floor(Date.now() / 1000), body))).status, 401, 'a signature of another body');
    assert.equal((await balance(renterEnv)).balance, 101);
  });

  it('a lease holds its cost, pays the provider less the fee, returns the rest; balance, earnings and ledger say so', async () => {
    assert.match((await hearth(['admin', 'fee', '10'], adminEnv)).stdout, /broker fee 10%/);
    // 0.01 h at 3600 cr/h: 36 cr held.
    const leased = await hearth(['lease', '--hours', '0.01'], renterEnv);
    assert.equal(leased.code, 0, leased.stderr);
    const leaseId = leased.stdout.trim();
    const held = await balance(renterEnv);
    assert.equal(held.balance, 101 - 36, `the lease's cost is held: ${JSON.stringify(held)}`);
    assert.ok(held.held > 0 && held.held <= 36, JSON.stringify(held));
    const run = await hearth(['run', join(dir, 'ws', 'short.py'), '--lease', leaseId], renterEnv);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await hearth(['release', leaseId], renterEnv)).code, 0);
    const after = await waitFor('the escrow to return', async () => {
      const b = await balance(renterEnv);
      return b.held === 0 ? b : undefined;
    });
    const spent = 101 - after.balance;
    assert.ok(spent > 0 && spent <= 36, `spent ${spent}`);
    const earned = (await balance(providerEnv)).earnings;
    assert.ok(Math.abs(earned - spent * 0.9) < 1e-5, `earned ${earned} of ${spent}`);

    const earnings = EarningsRow.array().parse(JSON.parse((await hearth(['--json', 'earnings'], providerEnv)).stdout));
    assert.deepEqual(earnings.map((e) => [e.workerId, e.workerName, e.day]), [[workerId, 'pricey', new Date().toISOString().slice(0, 10)]]);
    assert.ok(Math.abs(earnings[0]!.credits - earned) < 1e-9);
    const csv = (await hearth(['earnings', '--csv'], providerEnv)).stdout.split('\r\n');
    assert.equal(csv[0], 'day,worker_id,worker,credits');

    const postings = LedgerPosting.array().parse(JSON.parse((await hearth(['--json', 'ledger'], renterEnv)).stdout));
    const kinds = postings.filter((p) => p.leaseId === leaseId).map((p) => p.kind);
    assert.equal(kinds[0], 'hold');
    assert.ok(kinds.includes('meter') && kinds.includes('fee'), kinds.join());
    assert.equal(kinds.at(-1), 'release');
    const ledgerCsv = (await hearth(['ledger', '--csv', '--since', '1d'], renterEnv)).stdout.split('\r\n');
    assert.equal(ledgerCsv[0], 'id,at,kind,from,to,credits,lease,worker,key,memo');
    assert.equal(ledgerCsv.filter((l) => l.includes(leaseId)).length, kinds.length);
    const t = await broker.ledger.totals();
    assert.equal(t.sum, 0);
  });
});
