// Blob figures, each as a ratio to a baseline measured in the same run:
//   1. first upload of a workspace of 15 000 small files (2 MB in all) to a real broker (its own
//      process, folder store) vs `tar -cf` of the same folder;
//   2. the same upload again with nothing changed, vs the same tar;
//   3. a worker's blob-cache work for a 20-file job (ensure each + prune) with 50 000 blobs
//      cached vs an empty cache, and the pass over every cached blob the worker made before;
//   4. downloading a 64 MiB blob, sha256-verified, through a presigned URL from a stand-in S3
//      server (s3rver) vs through the broker's own route.
// Figures only: nothing here asserts a time.
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import S3rver from 's3rver';
import { BrokerClient } from '../src/client/api';
import { downloadVerified } from '../src/client/download';
import { uploadWorkspace } from '../src/client/workspace';
import { BlobCache } from '../src/worker/blob-cache';
import { spawnHearth, startBrokerProc, stopProcess, tempDir, waitForOutput } from '../test/integration/helpers';

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const hex = (n: number) => createHash('sha256').update(String(n)).digest('hex');

async function uploads(root: string): Promise<void> {
  const ws = join(root, 'ws');
  // 15 000 files of about 133 bytes in 150 folders: 2 MB, like the workspace of the report.
  for (let d = 0; d < 150; d++) {
    mkdirSync(join(ws, `pkg${d}`), { recursive: true });
    for (let i = 0; i < 100; i++) writeFileSync(join(ws, `pkg${d}`, `m${i}.py`), `# module ${d}.${i}\nVALUE = ${d * 100 + i}\n` + 'x'.repeat(100) + '\n');
  }
  const dataDir = join(root, 'broker');
  mkdirSync(dataDir);
  const broker = await startBrokerProc(dataDir);
  try {
    const client = new BrokerClient({ url: broker.url, token: broker.adminToken });
    let t0 = process.hrtime.bigint();
    execFileSync('tar', ['-cf', join(root, 'ws.tar'), '-C', ws, '.']);
    const tarMs = ms(t0);
    t0 = process.hrtime.bigint();
    const first = await uploadWorkspace(client, ws);
    const firstMs = ms(t0);
    const reruns: number[] = [];
    let again = first;
    for (let i = 0; i < 3; i++) {
      t0 = process.hrtime.bigint();
      again = await uploadWorkspace(client, ws);
      reruns.push(ms(t0));
    }
    const againMs = reruns.sort((a, b) => a - b)[1]!;
    const s = first.stats;
    console.log(
      `upload of ${s.files} files (${(s.bytes / 1e6).toFixed(1)} MB): ${firstMs.toFixed(0)} ms, ${Math.round(s.files / (firstMs / 1000))} files/s; ` +
        `tar -cf of the same folder ${tarMs.toFixed(0)} ms → ${(firstMs / tarMs).toFixed(1)}× tar`,
    );
    console.log(`re-run, nothing changed (${again.stats.uploadedFiles} sent; median of 3): ${againMs.toFixed(0)} ms → ${(againMs / tarMs).toFixed(2)}× tar`);
    // The upload before packing: one PUT per file, one after another (3 000 other small files).
    const old = Array.from({ length: 3000 }, (_, i) => Buffer.from(`# other module ${i}\n` + 'y'.repeat(110) + '\n'));
    t0 = process.hrtime.bigint();
    for (const b of old) await client.putBlob(sha(b), b, b.length);
    const oldMs = ms(t0);
    console.log(`one PUT per file, as before: ${Math.round(old.length / (oldMs / 1000))} files/s → packed upload ${((s.files / firstMs) / (old.length / oldMs)).toFixed(1)}× faster`);
  } finally {
    await stopProcess(broker.proc);
  }
}

async function cache(root: string): Promise<void> {
  const N = 50_000;
  const full = join(root, 'cache-full');
  const empty = join(root, 'cache-empty');
  const flat = join(root, 'cache-flat');
  mkdirSync(empty);
  mkdirSync(flat);
  for (let i = 0; i < N; i++) {
    const h = hex(i);
    mkdirSync(join(full, h.slice(0, 2)), { recursive: true });
    writeFileSync(join(full, h.slice(0, 2), h), 'x');
    writeFileSync(join(flat, h), 'x');
  }
  // The job's own 20 files are cached in both (a re-run of the same workspace).
  const job = Array.from({ length: 20 }, (_, i) => hex(N + i));
  for (const dir of [full, empty]) {
    for (const h of job) {
      mkdirSync(join(dir, h.slice(0, 2)), { recursive: true });
      writeFileSync(join(dir, h.slice(0, 2), h), 'x');
    }
  }
  const client = new BrokerClient({ url: 'http://127.0.0.1:9', token: 'unused' });
  const jobWork = async (c: BlobCache) => {
    const t0 = process.hrtime.bigint();
    for (const h of job) await c.ensure(h, 1);
    await c.prune();
    return ms(t0);
  };
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  // A worker that has been up a while: its index is read; the same job nine times.
  const steady = async (dir: string) => {
    const c = new BlobCache(dir, client);
    await c.evict();
    const xs: number[] = [];
    for (let i = 0; i < 9; i++) xs.push(await jobWork(c));
    return median(xs);
  };
  const e = await steady(empty);
  const f = await steady(full);
  // The first job right after the worker started, while its index is still being read.
  const starts: number[] = [];
  for (let i = 0; i < 5; i++) {
    const c = new BlobCache(full, client);
    starts.push(await jobWork(c));
    await c.evict();
  }
  const fStart = median(starts);
  // What the worker did before each job: list the one folder and stat every blob in it.
  const t0 = process.hrtime.bigint();
  for (const name of readdirSync(flat)) statSync(join(flat, name));
  const oldPass = ms(t0);
  console.log(
    `20-file job's blob-cache work: empty cache ${e.toFixed(2)} ms, 50 000 cached ${f.toFixed(2)} ms (${(f / e).toFixed(2)}× empty), ` +
      `50 000 cached just after start ${fStart.toFixed(2)} ms; before: a pass over 50 000 blobs ${oldPass.toFixed(0)} ms before every job`,
  );
}

async function downloads(root: string): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const s3rver = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: join(root, 's3') });
  const { port } = await s3rver.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  await s3.send(new CreateBucketCommand({ Bucket: 'hearth-bench' }));
  s3.destroy();
  const folderDir = join(root, 'b-folder');
  const s3Dir = join(root, 'b-s3');
  mkdirSync(folderDir);
  mkdirSync(s3Dir);
  const folder = await startBrokerProc(folderDir);
  const blobs = `s3://hearth-bench?endpoint=${encodeURIComponent(endpoint)}&forcePathStyle=true`;
  const s3proc = spawnHearth(['--data-dir', s3Dir, 'broker', '--port', '0', '--blobs', blobs], { HEARTH_S3_ACCESS_KEY_ID: 'S3RVER', HEARTH_S3_SECRET_ACCESS_KEY: 'S3RVER' });
  try {
    const m = await waitForOutput(s3proc, /broker listening on (http:\/\/127\.0\.0\.1:\d+)/);
    const viaFolder = new BrokerClient({ url: folder.url, token: folder.adminToken });
    const viaS3 = new BrokerClient({ url: m[1]!, token: readFileSync(join(s3Dir, 'admin-token'), 'utf8').trim() });
    const data = randomBytes(64 * 1024 * 1024);
    const h = sha(data);
    await viaFolder.putBlob(h, data, data.length);
    await viaS3.putBlob(h, data, data.length);
    const time = async (c: BrokerClient) => {
      const xs: number[] = [];
      for (let i = 0; i < 3; i++) {
        const dest = join(root, `dl-${i}`);
        const t0 = process.hrtime.bigint();
        await downloadVerified(c, h, data.length, dest);
        xs.push(ms(t0));
        rmSync(dest);
      }
      return xs.sort((a, b) => a - b)[1]!;
    };
    const b = await time(viaFolder);
    const s = await time(viaS3);
    const rate = (t: number) => (64 * 1.048576) / (t / 1000);
    console.log(
      `64 MiB blob download, sha256-verified: through the broker ${b.toFixed(0)} ms (${rate(b).toFixed(0)} MB/s), ` +
        `presigned URL from the stand-in S3 server ${s.toFixed(0)} ms (${rate(s).toFixed(0)} MB/s) → ${(b / s).toFixed(2)}× the broker's speed`,
    );
  } finally {
    await stopProcess(folder.proc);
    await stopProcess(s3proc);
    await s3rver.close();
  }
}

async function main(): Promise<void> {
  const root = tempDir('bench-blobs');
  try {
    mkdirSync(join(root, 'u'));
    await uploads(join(root, 'u'));
    mkdirSync(join(root, 'c'));
    await cache(join(root, 'c'));
    mkdirSync(join(root, 'd'));
    await downloads(join(root, 'd'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
