// The container file and the Kubernetes manifests name only settings the broker reads: every
// HEARTH_* variable they set is one the CLI or the broker takes, and every flag they pass is one
// `hearth broker` has. (Docker and Kubernetes are not here to run them.)
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const REPO = resolve(__dirname, '..', '..');

function sources(dir: string): string {
  let out = '';
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out += sources(p);
    else if (e.name.endsWith('.ts')) out += readFileSync(p, 'utf8');
  }
  return out;
}

describe('deploy: the container file and the Kubernetes manifests', () => {
  const files = [join(REPO, 'Dockerfile'), ...readdirSync(join(REPO, 'deploy', 'k8s')).map((f) => join(REPO, 'deploy', 'k8s', f))];
  const text = files.map((f) => readFileSync(f, 'utf8')).join('\n');
  const src = sources(join(REPO, 'src', 'cli')) + sources(join(REPO, 'src', 'client')) + sources(join(REPO, 'src', 'broker'));

  it('set only environment variables the broker reads', () => {
    const vars = new Set(text.match(/HEARTH_[A-Z_]+/g) ?? []);
    assert.ok(vars.has('HEARTH_DATABASE') && vars.has('HEARTH_DATA_DIR'));
    for (const v of vars) assert.match(src, new RegExp(`\\b(process\\.)?env\\.${v}\\b`), `${v} is set in the manifests but read nowhere`);
  });

  it('pass only flags `hearth broker` has, and probe the health route', () => {
    const up = readFileSync(join(REPO, 'src', 'cli', 'up.ts'), 'utf8');
    const broker = up.slice(up.indexOf(".command('broker')"), up.indexOf('.action(', up.indexOf(".command('broker')")));
    for (const flag of new Set(text.match(/"--[a-z-]+"/g) ?? [])) assert.ok(broker.includes(`'${flag.slice(1, -1)} `), `${flag} is not a flag of hearth broker`);
    assert.match(text, /path: \/v1\/health/);
    assert.match(readFileSync(join(REPO, 'src', 'broker', 'routes', 'api.ts'), 'utf8'), /app\.get\('\/v1\/health'/);
  });
});
