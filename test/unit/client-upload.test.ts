// Workspace upload against a real broker (folder store) on a loopback port: small files travel
// packed, each still hash-checked by the broker; a re-run with nothing changed sends nothing.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBroker, type BrokerApp } from '../../src/broker/app';
import { BrokerClient } from '../../src/client/api';
import { uploadWorkspace } from '../../src/client/workspace';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('client: workspace upload', function () {
  this.timeout(60_000);
  let dir: string;
  let b: BrokerApp;
  let client: BrokerClient;
  const requests: string[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hearth-upload-'));
    b = await buildBroker({ dataDir: join(dir, 'broker') });
    b.app.addHook('onRequest', async (req) => void requests.push(`${req.method} ${req.url.replace(/[0-9a-f]{64}/, 'SHA')}`));
    await b.app.listen({ port: 0, host: '127.0.0.1' });
    const addr = b.app.server.address() as { port: number };
    client = new BrokerClient({ url: `http://127.0.0.1:${addr.port}`, token: b.adminToken });
    requests.length = 0;
  });
  afterEach(async () => {
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function makeWorkspace(n: number): string {
    const ws = join(dir, 'ws');
    for (let i = 0; i < n; i++) {
      mkdirSync(join(ws, `d${i % 10}`), { recursive: true });
      writeFileSync(join(ws, `d${i % 10}`, `f${i}.py`), `# file ${i}\n`);
    }
    writeFileSync(join(ws, 'same-a.txt'), 'twin\n');
    writeFileSync(join(ws, 'same-b.txt'), 'twin\n');
    writeFileSync(join(ws, 'big.bin'), Buffer.alloc(200 * 1024, 7));
    return ws;
  }

  it('packs small files into a few requests, says what it sent, and sends nothing the second time', async () => {
    const ws = makeWorkspace(1200);
    const first = await uploadWorkspace(client, ws);
    const bytes = first.files.reduce((n, f) => n + f.size, 0);
    assert.deepEqual(first.stats, { files: 1203, bytes, uploadedFiles: 1203, uploadedBytes: bytes });
    const packs = requests.filter((r) => r === 'POST /v1/blobs/pack').length;
    const puts = requests.filter((r) => r.startsWith('PUT /v1/blobs/')).length;
    assert.ok(packs >= 2 && packs <= 4, `${packs} packs for 1 202 small files`);
    assert.equal(puts, 1, 'the one big file on its own');
    assert.deepEqual(await client.missingBlobs(first.files.map((f) => f.sha256)), []);

    requests.length = 0;
    const again = await uploadWorkspace(client, ws);
    assert.deepEqual(again.stats, { files: 1203, bytes, uploadedFiles: 0, uploadedBytes: 0 });
    assert.deepEqual(requests.filter((r) => !r.startsWith('POST /v1/blobs/missing')), [], 'only the missing-blobs question');

    writeFileSync(join(ws, 'd3', 'f3.py'), '# changed\n');
    const third = await uploadWorkspace(client, ws);
    assert.equal(third.stats.uploadedFiles, 1);
    assert.ok(third.files.some((f) => f.path === 'd3/f3.py' && f.sha256 === sha('# changed\n')));
  });

  it('refuses a whole pack when one blob in it does not match its hash, storing none of it', async () => {
    const good = Buffer.from('good bytes\n');
    const bad = Buffer.from('claimed bytes\n');
    await assert.rejects(
      client.packBlobs([
        { sha256: sha(good), data: good },
        { sha256: sha(bad), data: Buffer.from('other bytes\n') },
      ]),
      (e: { status?: number; code?: string }) => e.status === 400 && e.code === 'hash_mismatch',
    );
    assert.deepEqual((await client.missingBlobs([sha(good), sha(bad)])).sort(), [sha(good), sha(bad)].sort());
    await client.packBlobs([{ sha256: sha(good), data: good }]);
    assert.deepEqual(await client.missingBlobs([sha(good)]), []);
  });
});
