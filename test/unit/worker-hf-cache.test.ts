// The per-account Hugging Face cache: one folder per account key, capped by evicting whole
// entries least recently used first, never those of an account with a session running.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HfCache } from '../../src/worker/hf-cache';
import { jobEnv } from '../../src/worker/job-env';
import { bwrapArgs } from '../../src/worker/sandbox';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);

describe('worker: per-account Hugging Face cache', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'hearth-hfc-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  /** A model folder of `kib` KiB whose files were last used `ageS` seconds ago. */
  function model(key: string, name: string, kib: number, ageS: number): string {
    const d = join(root, key, 'hub', `models--org--${name}`, 'blobs');
    mkdirSync(d, { recursive: true });
    const f = join(d, 'w');
    writeFileSync(f, Buffer.alloc(kib * 1024, 1));
    const t = Date.now() / 1000 - ageS;
    utimesSync(f, t, t);
    return join(root, key, 'hub', `models--org--${name}`);
  }

  it('gives each key its own folder and refuses a key that is not one', async () => {
    const c = new HfCache(root, 1 << 30, () => {});
    const a = await c.acquire(A, null);
    const b = await c.acquire(B, null);
    assert.equal(a.dir, join(root, A));
    assert.notEqual(a.dir, b.dir);
    assert.ok(existsSync(a.dir));
    await assert.rejects(c.acquire('../../etc', null), /invalid cache key/);
    a.release();
    b.release();
  });

  it('evicts whole model folders, least recently used first, until the total fits; keeps the login token', async () => {
    const old = model(A, 'old', 400, 3000);
    const mid = model(B, 'mid', 400, 2000);
    const fresh = model(A, 'fresh', 400, 10);
    writeFileSync(join(root, A, 'token'), 'hf_x');
    const c = new HfCache(root, 900 * 1024, () => {});
    await c.evict();
    assert.ok(!existsSync(old), 'the oldest went');
    assert.ok(existsSync(mid) && existsSync(fresh));
    assert.ok(existsSync(join(root, A, 'token')));
  });

  it('never evicts from an account with a session running', async () => {
    const old = model(A, 'old', 400, 3000);
    const mid = model(B, 'mid', 400, 2000);
    const c = new HfCache(root, 500 * 1024, () => {});
    const held = await c.acquire(A, null);
    await c.evict();
    assert.ok(existsSync(old), 'in use: kept');
    assert.ok(!existsSync(mid));
    held.release();
    await c.evict();
    assert.ok(existsSync(old), 'now under the cap');
  });

  it('jobEnv: the renter\'s secrets pass, the job\'s own --env wins over them, the worker\'s settings win over both', () => {
    const env = jobEnv({
      workerEnv: { PATH: '/bin', HF_TOKEN: 'provider' },
      secrets: { HF_TOKEN: 'renter', WANDB_API_KEY: 'w', HF_HOME: '/forged' },
      specEnv: { WANDB_API_KEY: 'from-env-flag' },
      set: { HOME: '/h', HF_HOME: '/cache/a' },
    });
    assert.deepEqual(env, { PATH: '/bin', COLUMNS: '120', LINES: '40', HF_TOKEN: 'renter', WANDB_API_KEY: 'from-env-flag', HOME: '/h', HF_HOME: '/cache/a' });
  });

  it('bwrapArgs binds the account\'s cache folder read-write at its own path', () => {
    const ws = join(root, 'work', 'jobs', 'j');
    const cache = join(root, 'work', 'hf-cache', A);
    for (const d of [ws, cache]) mkdirSync(d, { recursive: true });
    const args = bwrapArgs({ workspace: ws, hide: [join(root, 'work')], python: { executable: '/usr/bin/python3', needs: [] }, command: ['python3'], binds: [cache] });
    const i = args.indexOf(cache);
    assert.equal(args[i - 1], '--bind');
    assert.equal(args[i + 1], cache);
    assert.ok(args.indexOf('--tmpfs') < i, 'bound after the work dir is hidden');
  });
});
