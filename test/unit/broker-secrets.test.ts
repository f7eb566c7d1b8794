// Secrets in the broker, without a network: sealing, the key check, masking (whole, line by line,
// split across chunks), and what the dispatch carries.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBroker } from '../../src/broker/app';
import { loadSecretsKey, SecretBox, SecretsKeyError } from '../../src/broker/secret-box';
import { maskNotebook } from '../../src/broker/artifact-mask';
import { SecretMasker } from '../../src/broker/secret-mask';
import { Secrets } from '../../src/broker/secrets';
import { openStore, type Store } from '../../src/broker/store/store';
import { SecretName, SetSecretBody } from '../../src/shared/protocol';
import { backendFor, TEST_DATABASE } from '../backend';

/** The test's store (SQLite in dir, or its own PostgreSQL database) with an account acct_aaaaaaaa. */
async function storeWithAccount(dir: string): Promise<Store> {
  const store = await openStore({ dataDir: dir, ...(await backendFor(dir)) });
  const token = { hash: randomBytes(8).toString('hex'), id: 'tok_aaaaaaaa', account_id: 'acct_aaaaaaaa', kind: 'user' as const, label: '', prefix: '', created_at: 1, expires_at: null };
  await store.accounts.create({ id: 'acct_aaaaaaaa', name: 'a', isAdmin: false, createdAt: 1 }, token);
  return store;
}

describe(`broker: secrets (${TEST_DATABASE ? 'PostgreSQL' : 'SQLite'})`, () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hearth-secrets-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('seals with AES-256-GCM bound to owner and name: another key or another owner opens nothing', () => {
    const box = SecretBox.fromKey(randomBytes(32));
    const sealed = box.seal('hf_value', 'acct_a\0HF_TOKEN');
    assert.equal(box.open(sealed, 'acct_a\0HF_TOKEN'), 'hf_value');
    assert.ok(!sealed.includes(Buffer.from('hf_value')));
    assert.throws(() => box.open(sealed, 'acct_b\0HF_TOKEN'));
    assert.throws(() => SecretBox.fromKey(randomBytes(32)).open(sealed, 'acct_a\0HF_TOKEN'));
    assert.notDeepEqual(box.seal('hf_value', 'x'), box.seal('hf_value', 'x'), 'a fresh nonce each time');
  });

  it('makes secrets.key 0600 on first start, reads an operator\'s key as hex or base64, and refuses a bad one', () => {
    const made = loadSecretsKey({ dataDir: dir, env: {} });
    assert.equal(statSync(join(dir, 'secrets.key')).mode & 0o777, 0o600);
    assert.deepEqual(loadSecretsKey({ dataDir: dir, env: {} }).key, made.key, 'the same key at the next start');
    const k = randomBytes(32);
    assert.deepEqual(loadSecretsKey({ dataDir: dir, env: { HEARTH_SECRETS_KEY: k.toString('hex') } }).key, k);
    assert.deepEqual(loadSecretsKey({ dataDir: dir, env: { HEARTH_SECRETS_KEY: k.toString('base64') } }).key, k);
    assert.throws(() => loadSecretsKey({ dataDir: dir, env: { HEARTH_SECRETS_KEY: 'short' } }), SecretsKeyError);
    const f = join(dir, 'op.key');
    writeFileSync(f, k.toString('base64'), { mode: 0o640 });
    assert.throws(() => loadSecretsKey({ dataDir: dir, keyFile: f, env: {} }), /readable or writable by others/);
  });

  it('a store opened with another key refuses to open, saying so', async () => {
    const store = await storeWithAccount(dir);
    try {
      const repo = store.secrets;
      const key = randomBytes(32);
      const s = await Secrets.open(repo, key, 'k1');
      await s.set('acct_aaaaaaaa', 'HF_TOKEN', 'hf_abcdefgh');
      await assert.rejects(Secrets.open(repo, randomBytes(32), 'HEARTH_SECRETS_KEY'), /the secrets key from HEARTH_SECRETS_KEY is not the key this broker's secrets were stored with/);
      const again = await Secrets.open(repo, key, 'k1');
      assert.deepEqual(await again.envFor({ id: 'job_aaaaaaaa', account_id: 'acct_aaaaaaaa' }), { HF_TOKEN: 'hf_abcdefgh' });
      assert.deepEqual(await again.envFor({ id: 'job_bbbbbbbb', account_id: 'acct_other000' }), {});
    } finally {
      await store.close();
    }
  });

  it('a secret set or removed through one broker reaches the next dispatch of another on the same database (replicas)', async () => {
    const store = await storeWithAccount(dir);
    try {
      const key = randomBytes(32);
      const a = await Secrets.open(store.secrets, key, 'k');
      const b = await Secrets.open(store.secrets, key, 'k');
      const job = { id: 'job_aaaaaaaa', account_id: 'acct_aaaaaaaa' };
      assert.deepEqual(await b.envFor(job), {});
      await a.set('acct_aaaaaaaa', 'HF_TOKEN', 'hf_from_a_1');
      assert.deepEqual(await b.envFor(job), { HF_TOKEN: 'hf_from_a_1' }, 'set on a, given by b');
      assert.deepEqual(b.prepare(job, { type: 'notice', level: 'info', message: 'hf_from_a_1' }).body, { type: 'notice', level: 'info', message: '***' }, 'and masked by b');
      await a.set('acct_aaaaaaaa', 'HF_TOKEN', 'hf_from_a_2');
      await a.remove('acct_aaaaaaaa', 'HF_TOKEN');
      assert.deepEqual(await b.envFor({ id: 'job_bbbbbbbb', account_id: 'acct_aaaaaaaa' }), {}, 'removed on a, gone on b');
      await b.set('acct_aaaaaaaa', 'OTHER', 'other-value');
      assert.deepEqual((await a.list('acct_aaaaaaaa')).map((x) => x.name), ['OTHER']);
    } finally {
      await store.close();
    }
  });

  it('buildBroker fails with a clear error, and leaves the database closed, on a wrong key', async () => {
    const backend = await backendFor(dir);
    const b = await buildBroker({ dataDir: dir, ...backend });
    await b.close();
    await assert.rejects(buildBroker({ dataDir: dir, ...backend, secretsKeyFile: join(dir, 'nope.key') }), /secrets key file .*nope\.key: ENOENT/);
    const other = join(dir, 'other.key');
    writeFileSync(other, randomBytes(32).toString('hex'), { mode: 0o600 });
    await assert.rejects(buildBroker({ dataDir: dir, ...backend, secretsKeyFile: other }), /is not the key this broker's secrets were stored with/);
    const again = await buildBroker({ dataDir: dir, ...backend });
    await again.close();
  });

  it('the routes: validate names and values, need a user token, and never return a value', async () => {
    const b = await buildBroker({ dataDir: dir, ...(await backendFor(dir)) });
    try {
      const admin = b.adminToken!;
      const worker = await b.broker.createToken((await b.broker.authenticate(admin))!.accountId, 'worker', 'w');
      // A real port: a refused request's body is left unread, which app.inject cannot do.
      const base = await b.app.listen({ port: 0, host: '127.0.0.1' });
      const req = async (method: 'GET' | 'PUT' | 'DELETE', url: string, token: string | undefined, payload?: unknown) => {
        const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
        if (payload !== undefined) headers['content-type'] = 'application/json';
        const res = await fetch(base + url, { method, headers, body: payload === undefined ? undefined : JSON.stringify(payload) });
        const body = await res.text();
        return { statusCode: res.status, body, json: <T = unknown>() => JSON.parse(body) as T };
      };
      assert.equal((await req('PUT', '/v1/secrets/HF_TOKEN', undefined, { value: 'hf_x1234' })).statusCode, 401);
      assert.equal((await req('PUT', '/v1/secrets/HF_TOKEN', worker, { value: 'hf_x1234' })).statusCode, 403);
      const badName = await req('PUT', '/v1/secrets/9LIVES', admin, { value: 'v' });
      assert.equal(badName.statusCode, 400);
      assert.match(badName.json<{ message: string }>().message, /secret name: name: a secret name is an environment variable name/);
      assert.equal((await req('PUT', '/v1/secrets/HF_TOKEN', admin, { value: '' })).statusCode, 400);
      assert.equal((await req('PUT', '/v1/secrets/HF_TOKEN', admin, { value: 'x'.repeat(64 * 1024 + 1) })).statusCode, 400);
      assert.equal((await req('PUT', '/v1/secrets/HF_TOKEN', admin, { value: 'v', more: 1 })).statusCode, 400);
      assert.deepEqual((await req('GET', '/v1/secrets', admin)).json(), [], 'nothing was stored by the refused requests');
      const put = await req('PUT', '/v1/secrets/HF_TOKEN', admin, { value: 'hf_x1234' });
      assert.equal(put.statusCode, 200);
      assert.deepEqual(Object.keys(put.json()).sort(), ['name', 'updatedAt']);
      const list = await req('GET', '/v1/secrets', admin);
      assert.ok(!list.body.includes('hf_x1234'));
      assert.deepEqual(list.json<{ name: string }[]>().map((x) => x.name), ['HF_TOKEN']);
      assert.equal((await req('DELETE', '/v1/secrets/HF_TOKEN', admin)).statusCode, 204);
      assert.equal((await req('DELETE', '/v1/secrets/HF_TOKEN', admin)).statusCode, 404);
    } finally {
      await b.close();
    }
  });

  it('masks values whole, line by line, and longest first; leaves values under 4 characters alone', () => {
    const m = new SecretMasker(['hf_abcdef', 'hf_abcdef_long', 'abc', '-----BEGIN KEY-----\nMIIEvQIBADANBgkq\n-----END KEY-----']);
    assert.equal(m.mask('a hf_abcdef_long and hf_abcdef'), 'a *** and ***');
    assert.equal(m.mask('abc stays'), 'abc stays');
    assert.equal(m.mask('line: MIIEvQIBADANBgkq'), 'line: ***');
    assert.deepEqual(m.maskDeep({ text: ['x hf_abcdef'], n: 1, 'hf_abcdef': true }), { text: ['x ***'], n: 1, '***': true });
  });

  it('holds back the end of a chunk that may start a value, so a value split between chunks is masked whole', () => {
    const m = new SecretMasker(['sk-0123456789']);
    let r = m.split('', 'token: sk-01');
    assert.deepEqual(r, { emit: 'token: ', carry: 'sk-01' });
    r = m.split(r.carry, '23456789 done\n');
    assert.deepEqual(r, { emit: '*** done\n', carry: '' });
    // Not a value after all: what was held goes out with the next chunk.
    r = m.split('', 'see sk-0');
    assert.deepEqual(m.split(r.carry, 'ther\n'), { emit: 'sk-0ther\n', carry: '' });
    // A chunk ending in the middle of a line that cannot start a value is not held at all.
    assert.deepEqual(m.split('', 'epoch 1 50%\r'), { emit: 'epoch 1 50%\r', carry: '' });
  });

  it('prepare: masks log, kernel and notice events, flushes what is held before the terminal status', async () => {
    const store = await storeWithAccount(dir);
    try {
      const s = await Secrets.open(store.secrets, randomBytes(32), 'k');
      await s.set('acct_aaaaaaaa', 'TOKEN', 'tok-secret-1');
      const job = { id: 'job_aaaaaaaa', account_id: 'acct_aaaaaaaa' };
      await s.envFor(job);
      const a = s.prepare(job, { type: 'log', stream: 'stdout', data: 'x tok-sec' });
      assert.deepEqual(a.body, { type: 'log', stream: 'stdout', data: 'x ' });
      // Not committed (its append failed): the resend is masked the same way.
      const again = s.prepare(job, { type: 'log', stream: 'stdout', data: 'x tok-sec' });
      assert.deepEqual(again.body, a.body);
      again.commit();
      assert.deepEqual(s.prepare(job, { type: 'kernel', requestId: null, msgType: 'stream', content: { text: 'tok-secret-1' } }).body, { type: 'kernel', requestId: null, msgType: 'stream', content: { text: '***' } });
      // Removed after dispatch: the job still has it, so it is still masked.
      await s.remove('acct_aaaaaaaa', 'TOKEN');
      assert.deepEqual(s.prepare(job, { type: 'notice', level: 'info', message: 'tok-secret-1' }).body, { type: 'notice', level: 'info', message: '***' });
      const end = s.prepare(job, { type: 'status', status: 'succeeded', exitCode: 0 });
      assert.deepEqual(end.before, [{ type: 'log', stream: 'stdout', data: 'tok-sec' }]);
      end.commit();
    } finally {
      await store.close();
    }
  });

  it('masks a value split between stdout and stderr, the two streams read as one log', async () => {
    const m = new SecretMasker(['sk-0123456789']);
    assert.deepEqual(m.maskParts(['a sk-01', '23456789 b']), ['a ***', ' b']);
    assert.deepEqual(m.maskParts(['sk-0', '1', '23456789sk-0123456789!']), ['***', '', '***!']);
    assert.deepEqual(m.maskParts(['nothing', 'here']), ['nothing', 'here']);
    const store = await storeWithAccount(dir);
    try {
      const s = await Secrets.open(store.secrets, randomBytes(32), 'k');
      await s.set('acct_aaaaaaaa', 'TOKEN', 'tok-secret-1');
      const job = { id: 'job_bbbbbbbb', account_id: 'acct_aaaaaaaa' };
      await s.envFor(job);
      const a = s.prepare(job, { type: 'log', stream: 'stdout', data: 'key: tok-se' });
      assert.deepEqual([a.before, a.body], [[], { type: 'log', stream: 'stdout', data: 'key: ' }]);
      a.commit();
      // Two characters on stderr: still a start of the value, held across both streams.
      const b = s.prepare(job, { type: 'log', stream: 'stderr', data: 'cr' });
      assert.deepEqual([b.before, b.body], [[], { type: 'log', stream: 'stderr', data: '' }]);
      b.commit();
      const c = s.prepare(job, { type: 'log', stream: 'stdout', data: 'et-1 done\n' });
      assert.deepEqual(c.before, [], 'the value started on stdout: its *** is there');
      assert.deepEqual(c.body, { type: 'log', stream: 'stdout', data: '*** done\n' });
      c.commit();
      // Not a value after all: what was held of stdout goes out first, in order.
      s.prepare(job, { type: 'log', stream: 'stdout', data: 'see tok-' }).commit();
      const d = s.prepare(job, { type: 'log', stream: 'stderr', data: 'nope\n' });
      assert.deepEqual([d.before, d.body], [[{ type: 'log', stream: 'stdout', data: 'tok-' }], { type: 'log', stream: 'stderr', data: 'nope\n' }]);
      d.commit();
      // Scalar run and tag names, artifact and requirements paths.
      const sc = s.prepare(job, { type: 'scalars', points: [{ run: 'tok-secret-1', tag: 'loss/tok-secret-1', step: 1, wallTime: 1, value: 0.5 }] }).body;
      assert.deepEqual(sc, { type: 'scalars', points: [{ run: '***', tag: 'loss/***', step: 1, wallTime: 1, value: 0.5 }] });
      const art = s.prepare(job, { type: 'artifact', artifact: { path: 'outputs/tok-secret-1/w.pt', sha256: '0'.repeat(64), size: 1 } }).body;
      assert.deepEqual(art, { type: 'artifact', artifact: { path: 'outputs/***/w.pt', sha256: '0'.repeat(64), size: 1 } });
    } finally {
      await store.close();
    }
  });

  it('masks the outputs of an executed notebook, and leaves a notebook without the value byte for byte', () => {
    const m = new SecretMasker(['tok-secret-1']);
    const nb = { cells: [{ cell_type: 'code', source: 'print(v)', outputs: [{ output_type: 'stream', name: 'stdout', text: ['tok-secret-1\n'] }, { output_type: 'execute_result', data: { 'text/plain': "'tok-secret-1'" } }] }], nbformat: 4 };
    const out = maskNotebook(m, Buffer.from(JSON.stringify(nb)));
    assert.ok(out);
    assert.ok(!out.includes('tok-secret-1'));
    assert.deepEqual((JSON.parse(out.toString()) as typeof nb).cells[0]!.outputs, [{ output_type: 'stream', name: 'stdout', text: ['***\n'] }, { output_type: 'execute_result', data: { 'text/plain': "'***'" } }]);
    assert.equal(maskNotebook(m, Buffer.from(JSON.stringify({ cells: [{ outputs: [{ text: 'fine' }] }] }))), undefined);
    assert.equal(maskNotebook(m, Buffer.from('not json tok-secret-1')), undefined);
  });

  it('validates names like environment variables and caps values', () => {
    for (const ok of ['HF_TOKEN', '_x', 'a1']) assert.equal(SecretName.safeParse(ok).success, true, ok);
    for (const bad of ['1A', 'A-B', '', 'HEARTH_TOKEN', 'x'.repeat(129), 'A B']) assert.equal(SecretName.safeParse(bad).success, false, bad);
    assert.equal(SetSecretBody.safeParse({ value: 'x'.repeat(64 * 1024) }).success, true);
    assert.equal(SetSecretBody.safeParse({ value: 'é'.repeat(40 * 1024) }).success, false, 'the cap counts UTF-8 bytes');
    assert.equal(SetSecretBody.safeParse({ value: '' }).success, false);
    assert.equal(SetSecretBody.safeParse({ value: 'x', extra: 1 }).success, false);
  });

  it('bounds what one account\'s secrets cost the masking of every chunk: 256 KiB of values, 1 000 masked strings, 200 lines a value', async () => {
    // The attack: 200 secrets of 64 KiB, each ~10 900 distinct lines, made masking one 64 KiB log
    // chunk take over a second of the broker's event loop, for every account's requests.
    const lines = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag}${String(i).padStart(5, '0')}`).join('\n');
    assert.equal(SetSecretBody.safeParse({ value: lines(200, 'a') }).success, true);
    assert.equal(SetSecretBody.safeParse({ value: lines(201, 'a') }).success, false, 'a value of 201 lines');
    const b = await buildBroker({ dataDir: dir });
    try {
      const base = await b.app.listen({ port: 0, host: '127.0.0.1' });
      const put = async (name: string, value: string) => {
        const res = await fetch(`${base}/v1/secrets/${name}`, { method: 'PUT', headers: { authorization: `Bearer ${b.adminToken!}`, 'content-type': 'application/json' }, body: JSON.stringify({ value }) });
        return { status: res.status, body: await res.text() };
      };
      // 4 × 200 lines (+ each value itself) = 804 masked strings; a 5th of 200 lines passes 1 000.
      for (let i = 0; i < 4; i++) assert.equal((await put(`MULTI${i}`, lines(200, `m${i}x`))).status, 200);
      const tooMany = await put('MULTI4', lines(200, 'm4x'));
      assert.equal(tooMany.status, 409, tooMany.body);
      assert.match(tooMany.body, /1000 masked strings/);
      // Replacing one is measured without its old value.
      assert.equal((await put('MULTI0', lines(150, 'm0y'))).status, 200);
      for (let i = 0; i < 4; i++) assert.equal((await fetch(`${base}/v1/secrets/MULTI${i}`, { method: 'DELETE', headers: { authorization: `Bearer ${b.adminToken!}` } })).status, 204);
      // Bytes: three values of 64 KiB and a fourth of 64 KiB make 256 KiB; one more byte does not fit.
      const big = (c: string) => c.repeat(64 * 1024);
      for (const c of ['a', 'b', 'c', 'd']) assert.equal((await put(`BIG_${c}`, big(c))).status, 200);
      const over = await put('BIG_e', 'eeee');
      assert.equal(over.status, 409, over.body);
      assert.match(over.body, /256 KiB/);
    } finally {
      await b.close();
    }
  });
});
