import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { outputMatcher } from '../../src/shared/output-globs';
import { findOutputs, walkFiles } from '../../src/worker/artifacts';
import { confinedPathNoSymlinks, realPathInside } from '../../src/worker/confine';

describe('worker path confinement', () => {
  let root: string;
  let outside: string;
  beforeEach(() => {
    root = mkdtempSync(join(os.tmpdir(), 'hearth-worker-paths-'));
    outside = mkdtempSync(join(os.tmpdir(), 'hearth-worker-outside-'));
  });
  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  it('resolves normal relative paths under the root', async () => {
    assert.equal(await confinedPathNoSymlinks(root, 'a/b/c.py'), join(root, 'a', 'b', 'c.py'));
    mkdirSync(join(root, 'a'));
    assert.equal(await confinedPathNoSymlinks(root, 'a/x'), join(root, 'a', 'x'));
  });

  for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'a/./b', 'a//b', '', '.', '..', 'a\\..\\b', 'C:/x', 'a\0b', 'a/']) {
    it(`rejects ${JSON.stringify(bad)}`, async () => {
      await assert.rejects(confinedPathNoSymlinks(root, bad), /refusing/);
    });
  }

  it('rejects a path through a symlinked folder that leaves the root', async () => {
    symlinkSync(outside, join(root, 'link'));
    await assert.rejects(confinedPathNoSymlinks(root, 'link/file'), /symlink/);
  });

  it('rejects writing over a symlink', async () => {
    writeFileSync(join(outside, 'target'), 'x');
    symlinkSync(join(outside, 'target'), join(root, 'f'));
    await assert.rejects(confinedPathNoSymlinks(root, 'f'), /symlink/);
  });

  it('realPathInside accepts a real folder and refuses one that is a symlink out', async () => {
    mkdirSync(join(root, 'runs'));
    assert.ok(await realPathInside(root, 'runs'));
    symlinkSync(outside, join(root, 'escape'));
    assert.equal(await realPathInside(root, 'escape'), null);
    assert.equal(await realPathInside(root, 'missing'), null);
  });
});

describe('worker output globs', () => {
  it('matches globs relative to the workspace, dotfiles included, folders by name', () => {
    const m = outputMatcher(['outputs/**', '*.pt', 'checkpoints/', './model.safetensors', 'logs']);
    const yes = ['outputs/a.bin', 'outputs/deep/.hidden', 'model.pt', 'checkpoints/e1/w.pt', 'model.safetensors', 'logs/x/y.txt', '.x.pt'];
    const no = ['sub/model.pt', 'output/a', 'train.py', 'checkpointsx/a', 'a/model.safetensors'];
    for (const p of yes) assert.ok(m(p), `should match ${p}`);
    for (const p of no) assert.ok(!m(p), `should not match ${p}`);
  });

  it('matches nothing when there are no globs', () => {
    assert.equal(outputMatcher([])('a'), false);
    assert.equal(outputMatcher(['  '])('a'), false);
  });

  it('finds matching regular files and never follows or returns symlinks', async () => {
    const root = mkdtempSync(join(os.tmpdir(), 'hearth-worker-out-'));
    const outside = mkdtempSync(join(os.tmpdir(), 'hearth-worker-secret-'));
    try {
      mkdirSync(join(root, 'outputs', 'sub'), { recursive: true });
      writeFileSync(join(root, 'outputs', 'a.txt'), 'a');
      writeFileSync(join(root, 'outputs', 'sub', 'b.txt'), 'bb');
      writeFileSync(join(root, 'train.py'), 'print(1)');
      writeFileSync(join(outside, 'secret'), 'secret');
      symlinkSync(join(outside, 'secret'), join(root, 'outputs', 'stolen'));
      symlinkSync(outside, join(root, 'outputs', 'dirlink'));
      const found = await findOutputs(root, ['outputs/**']);
      assert.deepEqual(
        found.map((f) => [f.path, f.size]),
        [
          ['outputs/a.txt', 1],
          ['outputs/sub/b.txt', 2],
        ],
      );
      assert.deepEqual(
        (await walkFiles(root)).map((f) => f.path),
        ['outputs/a.txt', 'outputs/sub/b.txt', 'train.py'],
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
      rmSync(outside, { recursive: true, force: true });
    }
  });
});
