// A real wheelhouse for the environment tests and the benchmark: a tiny local package built into a
// wheel by pip itself (`pip wheel`, no index), and real virtual environments made with `venv`.
// Nothing here is a stand-in: pip, venv and the wheels are the real thing.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Debian's interpreter: it has pip (python3-pip), setuptools and wheel, which `pip wheel` needs offline. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

/** Builds the wheel of package `name` (module of the same name, VALUE = value) into `wheelhouse`. */
export function buildWheel(root: string, wheelhouse: string, name: string, version: string, value: string): string {
  const src = join(root, `src-${name}-${version}`);
  mkdirSync(join(src, name), { recursive: true });
  writeFileSync(
    join(src, 'pyproject.toml'),
    `[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n[project]\nname = "${name}"\nversion = "${version}"\n`,
  );
  writeFileSync(join(src, name, '__init__.py'), `VALUE = ${JSON.stringify(value)}\n`);
  mkdirSync(wheelhouse, { recursive: true });
  // No build isolation: it would fetch setuptools from an index, and there is none here.
  execFileSync(SYSTEM_PYTHON, ['-m', 'pip', 'wheel', '--no-build-isolation', '--no-deps', '--no-index', '-q', '-w', wheelhouse, src], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, PIP_NO_INDEX: '1' },
  });
  const whl = readdirSync(wheelhouse).find((f) => f.startsWith(`${name}-${version}-`) && f.endsWith('.whl'));
  if (!whl) throw new Error(`pip wheel made no wheel of ${name} ${version} in ${wheelhouse}`);
  return join(wheelhouse, whl);
}

/**
 * A virtual environment on Debian's interpreter holding `wheel` (installed by pip from the file,
 * no index). With system site-packages it sees Debian's packages as a provider's venv would.
 */
export function makeVenv(dir: string, wheel: string, opts: { systemSitePackages: boolean }): string {
  execFileSync(SYSTEM_PYTHON, ['-m', 'venv', '--without-pip', ...(opts.systemSitePackages ? ['--system-site-packages'] : []), dir]);
  // pip of the system interpreter installs into the venv (`--python`, pip >= 22.3).
  execFileSync(SYSTEM_PYTHON, ['-m', 'pip', '--python', join(dir, 'bin', 'python'), 'install', '-q', '--no-index', '--no-deps', wheel], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return join(dir, 'bin', 'python');
}
