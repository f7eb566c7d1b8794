import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConnection, resolveDataDir, saveConfig, loadConfig } from '../../src/client/config';
import { confinedPath } from '../../src/client/files';
import { scanWorkspace } from '../../src/client/workspace';
import { statSync } from 'node:fs';

describe('client: workspace scan, path confinement, config', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hearth-unit-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (rel: string, s: string) => {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), s);
  };

  it('honours .gitignore at every level and .hearthignore, and never uploads .git or .hearth', async () => {
    write('train.py', 'print(1)');
    write('.gitignore', '*.log\ndata/\n');
    write('a.log', 'x');
    write('data/big.bin', 'x');
    write('sub/.gitignore', 'local.txt\n');
    write('sub/local.txt', 'x');
    write('sub/keep.py', 'x');
    write('other/local.txt', 'kept: the sub/.gitignore does not apply here');
    write('.hearthignore', 'secrets/\n');
    write('secrets/key', 'x');
    write('.git/config', 'x');
    write('.hearth/runs/x', 'x');
    symlinkSync('/etc/passwd', join(dir, 'link'));
    const ws = await scanWorkspace(dir);
    assert.deepEqual(ws.manifest.files.map((f) => f.path).sort(), ['.gitignore', '.hearthignore', 'other/local.txt', 'sub/.gitignore', 'sub/keep.py', 'train.py']);
    const f = ws.manifest.files.find((x) => x.path === 'train.py')!;
    assert.equal(f.sha256, createHash('sha256').update('print(1)').digest('hex'));
    assert.equal(f.size, 8);
  });

  it('re-hashes a file whose content changed even when a cache entry exists', async () => {
    write('a.py', 'one');
    const first = (await scanWorkspace(dir)).manifest.files[0]!.sha256;
    writeFileSync(join(dir, 'a.py'), 'two!');
    const second = (await scanWorkspace(dir)).manifest.files[0]!.sha256;
    assert.notEqual(first, second);
  });

  it('confines paths from outside to their folder', () => {
    assert.equal(confinedPath('/jobs/1', 'a/b.pt'), '/jobs/1/a/b.pt');
    for (const bad of ['../x', 'a/../../x', '/etc/passwd', '', 'a/./b']) assert.throws(() => confinedPath('/jobs/1', bad), /refusing/);
  });

  it('finds the broker in flags, then environment, then config.json (written 0600)', () => {
    saveConfig(dir, { brokerUrl: 'http://127.0.0.1:9', token: 'from-file' });
    assert.equal(statSync(join(dir, 'config.json')).mode & 0o777, 0o600);
    assert.deepEqual(loadConfig(dir), { brokerUrl: 'http://127.0.0.1:9', token: 'from-file' });
    // Each says where its token came from (a refusal names it); an empty variable is an unset one.
    assert.deepEqual(resolveConnection({ dataDir: dir }, {}), { brokerUrl: 'http://127.0.0.1:9', token: 'from-file', tokenFrom: join(dir, 'config.json') });
    assert.deepEqual(resolveConnection({ dataDir: dir }, { HEARTH_TOKEN: '' }), { brokerUrl: 'http://127.0.0.1:9', token: 'from-file', tokenFrom: join(dir, 'config.json') });
    assert.deepEqual(resolveConnection({ dataDir: dir }, { HEARTH_TOKEN: 'env' }), { brokerUrl: 'http://127.0.0.1:9', token: 'env', tokenFrom: 'HEARTH_TOKEN' });
    assert.deepEqual(resolveConnection({ dataDir: dir, token: 'flag', broker: 'http://x:1' }, { HEARTH_TOKEN: 'env' }), { brokerUrl: 'http://x:1', token: 'flag', tokenFrom: '--token' });
    assert.equal(resolveDataDir(undefined, { HEARTH_DATA_DIR: dir }), dir);
    writeFileSync(join(dir, 'config.json'), '{ not json');
    assert.throws(() => loadConfig(dir), /not valid JSON/);
    writeFileSync(join(dir, 'config.json'), '{"brokerUrl": 5}');
    assert.throws(() => loadConfig(dir), /brokerUrl/);
  });
});
