// `npm ci` on Node 20 prints no engine warning: every package in the lock file accepts Node 20.19
// (the oldest Node the project supports, package.json's engines.node). A dependency that moves to
// Node 22 fails this test; pin it (package.json "overrides") to a version that still supports 20.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const ROOT = join(__dirname, '../..');
// semver is already in node_modules (npm's own range semantics); it has no types here.
const semver = createRequire(__filename)('semver') as { satisfies(v: string, range: string): boolean; minVersion(r: string): { version: string } | null };

describe('engines in package-lock.json', () => {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; engines?: unknown }> };
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
  const oldest = semver.minVersion(pkg.engines.node)!.version;

  it('the project supports Node 20.19', () => {
    assert.equal(oldest, '20.19.0');
  });

  it(`every package accepts Node ${oldest}`, () => {
    const refused: string[] = [];
    for (const [path, p] of Object.entries(lock.packages)) {
      // engines as an array or object without `node` (old package.json styles) says nothing about Node.
      const node = typeof p.engines === 'object' && p.engines !== null && !Array.isArray(p.engines) ? (p.engines as { node?: unknown }).node : undefined;
      if (typeof node !== 'string') continue;
      if (!semver.satisfies(oldest, node)) refused.push(`${path || 'hearth'}@${p.version}: node ${node}`);
    }
    assert.deepEqual(refused, []);
  });
});
