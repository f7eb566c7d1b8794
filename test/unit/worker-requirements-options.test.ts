// A renter's requirements carry requirements only: pip options in a requirements file override
// the provider's pip settings (`--no-binary :all:` undid `PIP_ONLY_BINARY=:all:`), so the worker
// refuses them, naming the line, before pip runs.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findRequirements, refuseOptions } from '../../src/worker/env-cache';

describe('worker: requirements files may not carry pip options', () => {
  it('refuses option lines and options after a requirement, naming the line', () => {
    const refused: [string, RegExp][] = [
      ['numpy\n--no-binary :all:\n', /^Error: requirements\.txt line 2: "--no-binary :all:" is a pip option; the worker refuses option lines/],
      ['--only-binary=:none:\n', /line 1: "--only-binary=:none:"/],
      ['-r other.txt\n', /line 1: "-r other\.txt"/],
      ['-c constraints.txt\n', /line 1/],
      ['-e .\n', /line 1/],
      ['-i https://evil.example/simple\n', /line 1/],
      ['--index-url https://evil.example/simple\n', /line 1/],
      ['--extra-index-url https://evil.example/simple\n', /line 1/],
      ['--find-links /tmp\n', /line 1/],
      ['--pre\n', /line 1/],
      ['--trusted-host evil.example\n', /line 1/],
      ['  --no-binary :all:  # indented, with a comment\n', /line 1: "--no-binary :all:"/],
      ['numpy --no-binary :all:\n', /line 1: "numpy --no-binary :all:"/],
      ['numpy --global-option=--x\n', /line 1/],
      // A trailing backslash continues the line, as pip reads it.
      ['# a comment\nnumpy \\\n--no-binary :all:\n', /line 2: "numpy --no-binary :all:"/],
      ['numpy\r\n--no-binary :all:\r\n', /line 2/],
      ['pkg @ https://example.com/${PIP_INDEX_URL}.whl\n', /line 1: .* names an environment variable/],
    ];
    for (const [text, why] of refused) assert.throws(() => refuseOptions('requirements.txt', text), why, JSON.stringify(text));
  });

  it('passes plain requirements, markers, URLs with fragments, comments and --hash', () => {
    refuseOptions('requirements.txt', [
      '# pinned',
      'numpy==2.1.0 --hash=sha256:0123 --hash=sha256:4567',
      'torch>=2.6; python_version >= "3.10"  # the provider has it',
      'pkg @ https://example.com/pkg-1.0.zip#egg=pkg',
      'my-package[extra-one]~=1.0',
      '',
    ].join('\n'));
  });

  it('findRequirements refuses them in requirements.txt and in pyproject.toml\'s dependencies', async () => {
    const ws = mkdtempSync(join(tmpdir(), 'hearth-reqopt-'));
    try {
      writeFileSync(join(ws, 'requirements.txt'), 'numpy\n--no-binary :all:\n');
      await assert.rejects(findRequirements(ws, undefined, '/usr/bin/python3'), /^Error: requirements\.txt line 2: "--no-binary :all:" is a pip option/);
      rmSync(join(ws, 'requirements.txt'));
      writeFileSync(join(ws, 'pyproject.toml'), '[project]\nname = "x"\nversion = "0"\ndependencies = ["numpy", "--no-binary :all:"]\n');
      await assert.rejects(findRequirements(ws, undefined, '/usr/bin/python3'), /^Error: pyproject\.toml line 2: "--no-binary :all:" is a pip option/);
      writeFileSync(join(ws, 'pyproject.toml'), '[project]\nname = "x"\nversion = "0"\ndependencies = ["numpy\\n--pre"]\n');
      await assert.rejects(findRequirements(ws, undefined, '/usr/bin/python3'), /pyproject\.toml line 2: "--pre"/);
      writeFileSync(join(ws, 'pyproject.toml'), '[project]\nname = "x"\nversion = "0"\ndependencies = ["numpy>=2"]\n');
      assert.deepEqual(await findRequirements(ws, undefined, '/usr/bin/python3'), { source: 'pyproject.toml', text: 'numpy>=2\n' });
    } finally {
      rmSync(ws, { recursive: true, force: true });
    }
  });
});
