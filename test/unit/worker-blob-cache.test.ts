import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { startBroker, type RunningBroker } from '../../src/broker/server';
import { BrokerClient } from '../../src/client/api';
import { BlobCache } from '../../src/worker/blob-cache';

describe('worker blob cache', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(os.tmpdir(), 'hearth-worker-cache-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const sha = (n: number) => n.toString(16).padStart(64, '0');
  const at = (s: string) => join(dir, s.slice(0, 2), s);
  const put = (s: string, data: string | Buffer, mtime?: number) => {
    mkdirSync(join(dir, s.slice(0, 2)), { recursive: true });
    writeFileSync(at(s), data);
    if (mtime !== undefined) utimesSync(at(s), mtime, mtime);
  };
  // Never asked anything in these tests: eviction and the cached path need no broker.
  const client = new BrokerClient({ url: 'http://127.0.0.1:9', token: 't' });

  it('evicts least recently used blobs down to its size, sparing pinned ones and other files', async () => {
    for (let i = 1; i <= 5; i++) put(sha(i), Buffer.alloc(100), i * 1000); // blob 1 is the oldest
    writeFileSync(join(dir, 'not-a-blob'), Buffer.alloc(1000));
    const cache = new BlobCache(dir, client, 250);
    cache.pin(sha(1));
    const r = await cache.evict();
    assert.equal(r.removed, 3);
    assert.deepEqual(
      [1, 2, 3, 4, 5].filter((i) => existsSync(at(sha(i)))),
      [1, 5],
    );
    assert.ok(existsSync(join(dir, 'not-a-blob')));
    cache.unpin(sha(1));
    await new BlobCache(dir, client, 150).evict();
    assert.ok(!existsSync(at(sha(1))), 'unpinned, the oldest goes');
    assert.ok(existsSync(at(sha(5))));
  });

  it('serves a cached blob without asking the broker and marks it recently used', async () => {
    put(sha(7), 'abc', 1000);
    const cache = new BlobCache(dir, client);
    assert.equal(await cache.ensure(sha(7), 3), at(sha(7)));
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(Date.now() - statSync(at(sha(7))).mtimeMs < 3_600_000);
    await assert.rejects(cache.ensure('../etc/passwd', 1), /not a sha256/);
  });

  it('moves a cache from the one-folder layout into fan-out folders, keeping its use order', async () => {
    for (let i = 1; i <= 3; i++) {
      writeFileSync(join(dir, sha(i)), Buffer.alloc(100));
      utimesSync(join(dir, sha(i)), i * 1000, i * 1000);
    }
    const cache = new BlobCache(dir, client, 150);
    await cache.evict();
    assert.deepEqual(readdirSync(dir).filter((n) => n.length === 64), [], 'nothing left in the top folder');
    assert.ok(!existsSync(at(sha(1))) && !existsSync(at(sha(2))), 'the two oldest were evicted');
    assert.equal(await cache.ensure(sha(3), 100), at(sha(3)));
  });

  // Issue 8, item 15: the worker stat()ed every cached blob before each job, so the time to a
  // job's first line grew with the cache (39 522 blobs: 3–5 s). A job's ensure + prune must cost
  // the same whatever the cache holds: here, no stat or readdir beyond the job's own files.
  it('a job on a worker with a large cache touches only its own files', async () => {
    for (let i = 1; i <= 2000; i++) {
      writeFileSync(join(dir, sha(i)), 'x'); // the layout of the cache that was slow
    }
    const cache = new BlobCache(dir, client, 1e9);
    await cache.evict(); // the one-time read at start, in the background
    // The module object itself (its ESM namespace is read-only), which blob-cache.ts calls through.
    const fs = createRequire(__filename)('node:fs/promises') as Record<string, (...a: unknown[]) => unknown>;
    const calls = { stat: 0, readdir: 0, lstat: 0 };
    const orig = { stat: fs.stat!, readdir: fs.readdir!, lstat: fs.lstat! };
    for (const k of Object.keys(calls) as (keyof typeof calls)[]) {
      fs[k] = (...a: unknown[]) => {
        calls[k]++;
        return orig[k](...a);
      };
    }
    try {
      for (let i = 1; i <= 10; i++) await cache.ensure(sha(i), 1);
      await cache.prune();
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      Object.assign(fs, orig);
    }
    assert.ok(calls.stat + calls.readdir + calls.lstat <= 10, `a 10-file job made ${JSON.stringify(calls)} calls`);
  });

  describe('with a broker', function () {
    this.timeout(120_000);
    let b: RunningBroker;
    let bdir: string;
    before(async () => {
      bdir = mkdtempSync(join(os.tmpdir(), 'hearth-cache-broker-'));
      b = await startBroker({ dataDir: bdir, port: 0 });
    });
    after(async () => {
      await b.close();
      rmSync(bdir, { recursive: true, force: true });
    });

    // Issue 8, item 14: thousands of MaxListenersExceededWarning lines while a worker fetched a
    // large workspace. Its cause: each fetch() left an abort listener on the job's one signal
    // until garbage collection. The downloads now leave none behind.
    it('downloads 1 600 blobs under one signal, leaving no listener on it and no MaxListenersExceededWarning', async () => {
      const c = new BrokerClient({ url: b.url, token: b.adminToken });
      const blobs = Array.from({ length: 1600 }, (_, i) => {
        const data = Buffer.from(`blob ${i}\n`);
        return { sha256: createHash('sha256').update(data).digest('hex'), data };
      });
      for (let i = 0; i < blobs.length; i += 500) await c.packBlobs(blobs.slice(i, i + 500));
      const warnings: string[] = [];
      const onWarning = (w: Error) => void warnings.push(`${w.name}: ${w.message}`);
      process.on('warning', onWarning);
      try {
        const cache = new BlobCache(dir, c);
        const job = new AbortController();
        let next = 0;
        await Promise.all(
          Array.from({ length: 8 }, async () => {
            while (next < blobs.length) {
              const x = blobs[next++]!;
              const p = await cache.ensure(x.sha256, x.data.length, job.signal);
              assert.equal(await fsp.readFile(p, 'utf8'), x.data.toString());
            }
          }),
        );
        await new Promise((r) => setImmediate(r));
        // What the warning counts: listeners still on the job's signal once every download ended.
        assert.equal(getEventListeners(job.signal, 'abort').length, 0, 'abort listeners left on the job signal');
      } finally {
        process.off('warning', onWarning);
      }
      assert.deepEqual(warnings.filter((w) => /MaxListeners/.test(w)), []);
    });
    it('fetches small blobs many to a request before a job, each hash-checked, and only its own account\'s', async () => {
      const c = new BrokerClient({ url: b.url, token: b.adminToken });
      const blobs = Array.from({ length: 1500 }, (_, i) => {
        const data = Buffer.from(`prefetched ${i}\n`);
        return { sha256: createHash('sha256').update(data).digest('hex'), size: data.length, data };
      });
      for (let i = 0; i < blobs.length; i += 500) await c.packBlobs(blobs.slice(i, i + 500));
      const cache = new BlobCache(dir, c);
      let batches = 0;
      let singles = 0;
      const batch = c.blobBatch.bind(c);
      c.blobBatch = (h) => (batches++, batch(h));
      const single = c.downloadBlob.bind(c);
      c.downloadBlob = (sha, o) => (singles++, single(sha, o));
      await cache.prefetch(blobs);
      for (const x of blobs) assert.equal(await fsp.readFile(await cache.ensure(x.sha256, x.size), 'utf8'), x.data.toString());
      assert.equal(batches, 2, '1 500 small blobs in two requests');
      assert.equal(singles, 0, 'none fetched on its own');

      const stranger = new BrokerClient({ url: b.url, token: (await c.createAccount('stranger')).token });
      await assert.rejects(stranger.blobBatch([blobs[0]!.sha256]), (e: { status?: number }) => e.status === 404);
    });
  });
});
