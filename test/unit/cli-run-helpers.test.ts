// The CLI's pure parts: which folder a run uploads, what it exits with, and `logs --tail`.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findProjectRoot, jobEnv, runLayout } from '../../src/client/submit-run';
import { isIgnored } from '../../src/client/workspace';
import { EXIT, exitCodeOf } from '../../src/cli/exit-codes';
import { TailBuffer } from '../../src/cli/job-output';

describe('project root of a run', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hearth-root-'));
    mkdirSync(join(dir, 'home/proj/src/deep'), { recursive: true });
    writeFileSync(join(dir, 'home/proj/src/deep/train.py'), '');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const home = () => join(dir, 'home');

  for (const marker of ['.git', 'pyproject.toml', '.hearthignore']) {
    it(`is the nearest folder above the script holding ${marker}`, () => {
      writeFileSync(join(dir, 'home/proj', marker), '');
      assert.equal(findProjectRoot(join(dir, 'home/proj/src/deep/train.py'), { home: home() }), join(dir, 'home/proj'));
    });
  }

  it('is the script\'s folder when no folder below home holds a marker (a dotfiles repo in ~ does not count)', () => {
    mkdirSync(join(dir, 'home/.git'));
    assert.equal(findProjectRoot(join(dir, 'home/proj/src/deep/train.py'), { home: home() }), join(dir, 'home/proj/src/deep'));
  });

  it('within a folder (the extension\'s workspace folder): a marker inside it, else the folder itself', () => {
    writeFileSync(join(dir, 'home/proj/pyproject.toml'), '');
    assert.equal(findProjectRoot(join(dir, 'home/proj/src/deep/train.py'), { within: join(dir, 'home/proj/src') }), join(dir, 'home/proj/src'));
    writeFileSync(join(dir, 'home/proj/src/deep/.hearthignore'), '');
    assert.equal(findProjectRoot(join(dir, 'home/proj/src/deep/train.py'), { within: join(dir, 'home/proj/src') }), join(dir, 'home/proj/src/deep'));
  });

  it('--workdir must hold the script', () => {
    assert.deepEqual(runLayout(join(dir, 'home/proj/src/deep/train.py'), { workdir: join(dir, 'home/proj') }), { root: join(dir, 'home/proj'), entry: 'src/deep/train.py' });
    assert.throws(() => runLayout(join(dir, 'home/proj/src/deep/train.py'), { workdir: join(dir, 'home/other') }), /not a folder/);
    mkdirSync(join(dir, 'home/other'));
    assert.throws(() => runLayout(join(dir, 'home/proj/src/deep/train.py'), { workdir: join(dir, 'home/other') }), /not inside/);
  });

  it('a script the project ignores (a scratch folder in a repo) runs from its own folder; --workdir then says why not', () => {
    mkdirSync(join(dir, 'repo/.git'), { recursive: true });
    mkdirSync(join(dir, 'repo/scratch/try'), { recursive: true });
    writeFileSync(join(dir, 'repo/.gitignore'), 'scratch/\n*.log\n');
    writeFileSync(join(dir, 'repo/scratch/try/peek.py'), 'print(1)\n');
    writeFileSync(join(dir, 'repo/train.py'), 'print(1)\n');
    assert.deepEqual(runLayout(join(dir, 'repo/train.py')), { root: join(dir, 'repo'), entry: 'train.py' });
    assert.deepEqual(runLayout(join(dir, 'repo/scratch/try/peek.py')), { root: join(dir, 'repo/scratch/try'), entry: 'peek.py' });
    assert.throws(() => runLayout(join(dir, 'repo/scratch/try/peek.py'), { workdir: join(dir, 'repo') }), /scratch\/try\/peek\.py is ignored in .*repo \(\.gitignore or \.hearthignore\)/);
    assert.equal(isIgnored(join(dir, 'repo'), 'scratch/try/peek.py'), true);
    assert.equal(isIgnored(join(dir, 'repo'), 'train.py'), false);
    assert.equal(isIgnored(join(dir, 'repo'), '.git/config'), true);
  });

  it('a script gets PYTHONPATH=. (the project root) unless the renter sets one; a notebook does not', () => {
    assert.deepEqual(jobEnv('src/train.py', { A: '1' }), { PYTHONPATH: '.', A: '1' });
    assert.deepEqual(jobEnv('src/train.py', { PYTHONPATH: 'lib' }), { PYTHONPATH: 'lib' });
    assert.deepEqual(jobEnv('nb/a.ipynb', {}), {});
  });
});

describe('exit codes', () => {
  it('the job\'s own code, 128+N for a signal, and distinct codes for hearth\'s own outcomes', () => {
    assert.equal(exitCodeOf({ status: 'succeeded', exitCode: 0 }), 0);
    assert.equal(exitCodeOf({ status: 'failed', exitCode: 7 }), 7);
    assert.equal(exitCodeOf({ status: 'failed', exitCode: null, signal: 'SIGSEGV' }), 139);
    assert.equal(exitCodeOf({ status: 'failed', exitCode: null, reason: 'out of memory: limit 1 GiB (killed by SIGKILL)' }), 137);
    assert.equal(exitCodeOf({ status: 'failed', exitCode: null, reason: 'cannot sandbox' }), EXIT.error);
    assert.equal(exitCodeOf({ status: 'cancelled', reason: 'cancelled by the renter' }), 130);
    assert.equal(exitCodeOf({ status: 'cancelled', reason: 'lease expired' }), 124);
    assert.equal(exitCodeOf({ status: 'cancelled', reason: 'lease_cap: lease lease_x reached its cost cap of 5 cr' }), 124);
    assert.equal(exitCodeOf({ status: 'cancelled', reason: 'spend_limit: the account reached its monthly spend limit of 9 cr' }), 124);
    assert.equal(exitCodeOf({ status: 'cancelled', reason: 'lease released' }), 130);
    assert.equal(exitCodeOf({ status: 'lost', reason: 'the worker has been unreachable for 120 s' }), 75);
    const own = new Set<number>([EXIT.usage, EXIT.unreachable, EXIT.workerLost, EXIT.leaseExpired, EXIT.cancelled]);
    assert.equal(own.size, 5, 'no two of hearth\'s own outcomes share a code');
  });
});

describe('logs --tail', () => {
  it('keeps the last N lines across both streams, partial lines with theirs', () => {
    const t = new TailBuffer(2);
    t.push({ stream: 'stdout', data: 'a\nb\n' });
    t.push({ stream: 'stderr', data: 'c' });
    t.push({ stream: 'stderr', data: 'd\ne\npart' });
    // 'c' + 'd\n' is one line ("cd"): it stays whole; 'a' and 'b' go.
    assert.deepEqual(t.take(), [
      { stream: 'stderr', data: 'c' },
      { stream: 'stderr', data: 'd\n' },
      { stream: 'stderr', data: 'e\n' },
      { stream: 'stderr', data: 'part' },
    ]);
  });
});
