// A broker whose blobs live in S3 (`--blobs s3://…`): clients and workers move the bytes
// straight to and from the store with presigned URLs, and the broker only checks and records.
// The store is a stand-in S3 server (s3rver, an S3 HTTP server backed by a folder), started here
// on a loopback port of its own; it speaks the S3 protocol the SDK speaks to AWS, but it neither
// checks signatures nor x-amz-checksum-sha256, so the broker's own check is what the tamper test
// exercises.
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import S3rver from 's3rver';
import { BrokerClient } from '../../src/client/api';
import { DownloadMismatchError, downloadVerified } from '../../src/client/download';
import { backendFlagsFor } from '../backend';
import { hearth, spawnHearth, startWorkerProc, stopProcess, tempDir, waitForOutput, workspace, type WorkerProc } from './helpers';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const BUCKET = 'hearth-test';
const S3_ENV = { HEARTH_S3_ACCESS_KEY_ID: 'S3RVER', HEARTH_S3_SECRET_ACCESS_KEY: 'S3RVER' };

/** Every request the broker logged (fastify's request log): method, url and the status it answered. */
function brokerRequests(log: string): { method: string; url: string; status?: number }[] {
  const byId = new Map<string, { method: string; url: string; status?: number }>();
  for (const line of log.split('\n')) {
    let j: { reqId?: string; msg?: string; req?: { method: string; url: string }; res?: { statusCode: number } };
    try {
      j = JSON.parse(line) as typeof j;
    } catch {
      continue;
    }
    if (!j.reqId) continue;
    if (j.req) byId.set(j.reqId, { method: j.req.method, url: j.req.url });
    if (j.res && byId.has(j.reqId)) byId.get(j.reqId)!.status = j.res.statusCode;
  }
  return [...byId.values()];
}

describe('blobs in S3 with presigned URLs (integration, stand-in S3 server s3rver)', function () {
  this.timeout(180_000);
  const root = tempDir('s3');
  let s3rver: S3rver;
  let blobsUrl: string;
  let broker: { proc: ReturnType<typeof spawnHearth>; url: string; log: () => string; dataDir: string; adminToken: string };
  let worker: WorkerProc;
  let admin: BrokerClient;

  before(async () => {
    // The SDK is pinned for Node 20; its notice is about releases after it.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
    s3rver = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: join(root, 's3') });
    const addr = await s3rver.run();
    const endpoint = `http://127.0.0.1:${addr.port}`;
    const s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    s3.destroy();
    blobsUrl = `s3://${BUCKET}?endpoint=${encodeURIComponent(endpoint)}&region=us-east-1&forcePathStyle=true`;

    const dataDir = join(root, 'broker');
    mkdirSync(dataDir, { recursive: true });
    const proc = spawnHearth(['--data-dir', dataDir, 'broker', '--port', '0', ...(await backendFlagsFor(dataDir)), '--blobs', blobsUrl], { ...S3_ENV, HEARTH_LOG_REQUESTS: '1' });
    let log = '';
    proc.stdout!.on('data', (c: Buffer) => (log += c.toString()));
    proc.stderr!.on('data', (c: Buffer) => (log += c.toString()));
    const m = await waitForOutput(proc, /broker listening on (http:\/\/127\.0\.0\.1:\d+)/);
    broker = { proc, url: m[1]!, log: () => log, dataDir, adminToken: readFileSync(join(dataDir, 'admin-token'), 'utf8').trim() };
    admin = new BrokerClient({ url: broker.url, token: broker.adminToken });
    const workerToken = (await admin.createToken('worker', 'test')).token;
    worker = await startWorkerProc(broker.url, workerToken, join(root, 'worker'), ['--kill-grace', '2']);
  });

  after(async () => {
    if (worker) await stopProcess(worker.proc);
    if (broker) await stopProcess(broker.proc);
    await s3rver?.close();
  });

  it('runs a job end to end with every byte moving between the clients and the store, not through the broker', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const small = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`pkg/m${i}.py`, `VALUE = ${i}\n`]));
    const ws = workspace({
      ...small,
      'data.bin': data,
      'train.py': [
        'import hashlib, os',
        'from pkg.m39 import VALUE',
        'd = open("data.bin", "rb").read()',
        'print("input", hashlib.sha256(d).hexdigest(), VALUE)',
        'os.makedirs("outputs", exist_ok=True)',
        'open("outputs/model.pt", "wb").write(d[::-1] * 2)',
      ].join('\n'),
      'pkg/__init__.py': '',
    });
    const env = { HEARTH_BROKER_URL: broker.url, HEARTH_TOKEN: broker.adminToken, HEARTH_DATA_DIR: join(root, 'cli') };
    const r = await hearth(['run', join(ws, 'train.py')], env);
    assert.equal(r.code, 0, r.stderr.slice(-3000) + worker.log().slice(-3000));
    assert.match(r.stdout, new RegExp(`input ${sha(data)} 39`));
    const jobId = r.stderr.split('\n')[0]!;

    const dest = join(ws, 'pulled');
    const p = await hearth(['pull', jobId, '--dest', dest], env);
    assert.equal(p.code, 0, p.stderr);
    const model = readFileSync(join(dest, 'outputs', 'model.pt'));
    assert.equal(sha(model), sha(Buffer.concat([Buffer.from(data).reverse(), Buffer.from(data).reverse()])));

    // The broker never took or served a blob's bytes: no blob folder, no byte-carrying route.
    assert.ok(!existsSync(join(broker.dataDir, 'blobs')), 'the broker made no blob folder');
    const reqs = brokerRequests(broker.log());
    assert.ok(reqs.some((q) => q.url === '/v1/blobs/commit'), 'uploads were committed through the broker');
    const carried = reqs.filter((q) => (q.method === 'PUT' && /\/blobs\//.test(q.url)) || q.url === '/v1/blobs/pack');
    assert.deepEqual(carried, [], 'no bytes were PUT to the broker');
    const gets = reqs.filter((q) => q.method === 'GET' && /^\/v1\/blobs\/[0-9a-f]{64}/.test(q.url));
    assert.ok(gets.length >= 42, `the worker and pull asked for blobs (${gets.length})`);
    assert.deepEqual(gets.filter((q) => q.status !== 307), [], 'every blob GET was a redirect to the store');
    // And the bytes are in the bucket under their names.
    const keys = readdirSync(join(root, 's3', BUCKET), { recursive: true }).map(String);
    assert.ok(keys.some((k) => k.includes(sha(data))), 'the data blob is in the bucket');
    assert.ok(keys.some((k) => k.includes(sha(model))), 'the artifact is in the bucket');
  });

  it('hands a presigned URL only to whom may read the blob, and commits only the uploader\'s own object', async () => {
    const alice = new BrokerClient({ url: broker.url, token: (await admin.createAccount('alice')).token });
    const bob = new BrokerClient({ url: broker.url, token: (await admin.createAccount('bob')).token });
    const bytes = Buffer.from(`alice's secret ${Date.now()}`);
    const h = sha(bytes);
    await alice.putBlob(h, bytes, bytes.length);
    const res = await alice.downloadBlob(h);
    const got: Buffer[] = [];
    for await (const c of res.body) got.push(c as Buffer);
    assert.deepEqual(Buffer.concat(got), bytes);

    // Bob knows the hash but never uploaded the bytes: no URL, the same 404 as for nothing at all.
    const raw = await fetch(`${broker.url}/v1/blobs/${h}`, { headers: { authorization: `Bearer ${bob.token}` }, redirect: 'manual' });
    assert.equal(raw.status, 404);
    assert.equal(raw.headers.get('location'), null);
    await assert.rejects(bob.downloadBlob(h), (e: { status?: number }) => e.status === 404);

    // Bob cannot commit Alice's upload as his either: the ticket names an object of Alice's.
    const up = await alice.blobUploads([{ sha256: h, size: bytes.length }]);
    assert.ok(up.direct);
    await alice.putDirect(up.uploads[0]!, bytes, bytes.length);
    const c = await bob.commitBlobs([{ sha256: h, size: bytes.length, ticket: up.uploads[0]!.ticket }]);
    assert.deepEqual(c.committed, []);
    assert.equal(c.refused[0]?.error, 'not_uploaded');
    assert.deepEqual(await bob.missingBlobs([h]), [h]);

    // A user cannot ask for upload URLs as a job's worker.
    await assert.rejects(alice.blobUploads([{ sha256: h, size: 1 }], 'job_aaaaaaaaaaaa'), (e: { status?: number }) => e.status === 403);
  });

  it('resumes a partial download from the presigned URL with Range, and checks the whole', async () => {
    const dave = new BrokerClient({ url: broker.url, token: (await admin.createAccount('dave')).token });
    const bytes = randomBytes(256 * 1024 + 3);
    await dave.putBlob(sha(bytes), bytes, bytes.length);
    const dest = join(root, 'resumed.bin');
    writeFileSync(`${dest}.part`, bytes.subarray(0, 100_000));
    const r = await downloadVerified(dave, sha(bytes), bytes.length, dest);
    assert.equal(r.resumedFrom, 100_000);
    assert.deepEqual(readFileSync(dest), bytes);
    // A partial file that is not a prefix of the blob is found out by the hash and not kept.
    writeFileSync(`${dest}.part`, Buffer.alloc(100_000, 1));
    await assert.rejects(downloadVerified(dave, sha(bytes), bytes.length, join(root, 'never.bin'), { part: `${dest}.part` }), DownloadMismatchError);
    assert.ok(!existsSync(`${dest}.part`) && !existsSync(join(root, 'never.bin')));
  });

  it('never makes a blob of bytes that do not match their hash', async () => {
    const carol = new BrokerClient({ url: broker.url, token: (await admin.createAccount('carol')).token });
    const claimed = Buffer.from('the real weights, 32 bytes long!');
    const h = sha(claimed);
    const up = await carol.blobUploads([{ sha256: h, size: claimed.length }]);
    assert.ok(up.direct);
    // Same length, other bytes (AWS S3 refuses this PUT by its signed checksum; the stand-in takes it).
    await carol.putDirect(up.uploads[0]!, Buffer.from('the fake weights, 32 bytes long!'), claimed.length);
    const c = await carol.commitBlobs([{ sha256: h, size: claimed.length, ticket: up.uploads[0]!.ticket }]);
    assert.deepEqual(c.committed, []);
    assert.equal(c.refused[0]?.error, 'hash_mismatch');
    assert.deepEqual(await carol.missingBlobs([h]), [h], 'still missing');
    await assert.rejects(carol.downloadBlob(h), (e: { status?: number }) => e.status === 404);
    const keys = readdirSync(join(root, 's3', BUCKET), { recursive: true }).map(String);
    assert.ok(!keys.some((k) => k.includes(h)), 'neither the staged object nor a blob of that name is left');

    // Streamed through the broker (multipart into the bucket) too: refused, nothing kept.
    const put = await fetch(`${broker.url}/v1/blobs/${h}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${carol.token}`, 'content-type': 'application/octet-stream' },
      body: Buffer.from('x'.repeat(32)),
    });
    assert.equal(put.status, 400);
    assert.equal(((await put.json()) as { error: string }).error, 'hash_mismatch');
    assert.deepEqual(await carol.missingBlobs([h]), [h], 'still missing');
    // Then the true bytes go in, and come back.
    await carol.putBlob(h, claimed, claimed.length);
    assert.deepEqual(await carol.missingBlobs([h]), []);
  });
});
