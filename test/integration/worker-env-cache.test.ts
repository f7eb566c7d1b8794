// The worker's cache of environments, driven directly: real venvs, real pip installing from a
// wheelhouse built here. Concurrent sessions with the same requirements build once; environments
// in use are never evicted; the least recently used go first past the cap.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EnvCache, pipFailure, type EnsureHooks } from '../../src/worker/env-cache';
import { DEFAULT_LIMITS } from '../../src/worker/limits';
import { buildWheel, SYSTEM_PYTHON } from './wheelhouse';

const TEST_TMP = join(__dirname, '..', '..', '.test-tmp');

describe('worker: the environment cache (real pip)', function () {
  this.timeout(180_000);
  let dir: string;
  let victim: string;
  let ranPth: string;
  /** an sdist of `name` 1.0 whose setup.py is `lines` */
  const sdist = (wheelhouse: string, name: string, lines: string[]) => {
    const src = join(dir, 'sdist', `${name}-1.0`);
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'setup.py'), lines.join('\n') + '\n');
    execFileSync('tar', ['czf', join(wheelhouse, `${name}-1.0.tar.gz`), '-C', join(dir, 'sdist'), `${name}-1.0`]);
  };
  const saved: Record<string, string | undefined> = {};

  const cache = (maxBytes = 2 ** 40, diskBytes = DEFAULT_LIMITS.diskBytes) =>
    new EnvCache({
      dir: join(dir, 'envs'),
      homesDir: join(dir, 'homes'),
      maxBytes,
      python: SYSTEM_PYTHON,
      confinement: () => ({ sandbox: { kind: 'none' }, limits: { ...DEFAULT_LIMITS, diskBytes }, limitBackend: { kind: 'rlimit', why: 'test' }, isGpuHost: false }),
      log: () => undefined,
      diskCheckMs: 100,
    });
  const hooks = (phases: string[], out: string[]): EnsureHooks => ({
    signal: new AbortController().signal,
    onPhase: (p) => phases.push(p),
    onOutput: (_s, d) => out.push(d),
  });
  const req = (text: string) => ({ source: 'requirements.txt', text });
  /** the environments' folders (each has its marker <key>.ready beside it) */
  const envs = () => readdirSync(join(dir, 'envs')).filter((n) => !n.endsWith('.ready'));

  before(() => {
    mkdirSync(TEST_TMP, { recursive: true });
    dir = mkdtempSync(join(TEST_TMP, 'hearth-envcache-'));
    const wheelhouse = join(dir, 'wheelhouse');
    buildWheel(dir, wheelhouse, 'hearthtiny', '1.2.3', 'tiny');
    buildWheel(dir, wheelhouse, 'hearthtwo', '0.1.0', 'two');
    buildWheel(dir, wheelhouse, 'hearththree', '0.1.0', 'three');
    // The provider's pip configuration, in the worker's environment, as pip reads it.
    // An sdist whose setup.py writes 4 MiB into the environment, then never ends.
    const src = join(dir, 'sdist', 'hearthbig-1.0');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'setup.py'), 'import os, sys\nopen(os.path.join(sys.prefix, "big"), "wb").write(os.urandom(4 << 20))\nos.execv("/bin/sleep", ["sleep", "600"])\n');
    execFileSync('tar', ['czf', join(wheelhouse, 'hearthbig-1.0.tar.gz'), '-C', join(dir, 'sdist'), 'hearthbig-1.0']);
    // An sdist that plants the old readiness marker as a link to a file of the host's, and a .pth
    // that would run whenever the environment's python starts (the renter's code, both).
    victim = join(dir, 'victim');
    ranPth = join(dir, 'pth-ran');
    writeFileSync(victim, 'root:secret\n');
    sdist(wheelhouse, 'hearthlink', [
      'import os, sys, sysconfig',
      `RAN, VICTIM = ${JSON.stringify(ranPth)}, ${JSON.stringify(victim)}`,
      'for link in [os.path.join(sys.prefix, ".hearth-ready"), sys.prefix + ".ready"]:',
      '    try: os.symlink(VICTIM, link)',
      '    except OSError: pass',
      `open(os.path.join(sysconfig.get_paths()["purelib"], "zz_hearthlink.pth"), "w").write("import os; open(%r, 'a').write('ran') if 'env-' not in os.environ.get('HOME', '') else None\\n" % RAN)`,
      'from setuptools import setup',
      'setup(name="hearthlink", version="1.0")',
    ]);
    sdist(wheelhouse, 'hearthsrc', ['from setuptools import setup', 'setup(name="hearthsrc", version="1.0")']);
    // No build isolation: the sdist builds with the setuptools already here (there is no index).
    for (const [k, v] of Object.entries({ PIP_NO_INDEX: '1', PIP_FIND_LINKS: wheelhouse, PIP_NO_BUILD_ISOLATION: '0' })) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
  });
  after(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('sessions asking for the same requirements at once build the environment once; a later one reuses it', async () => {
    const c = cache();
    const p1: string[] = [];
    const p2: string[] = [];
    const o1: string[] = [];
    const o2: string[] = [];
    const [a, b] = await Promise.all([c.ensure(req('hearthtiny\n'), hooks(p1, o1)), c.ensure(req('hearthtiny\n'), hooks(p2, o2))]);
    assert.equal(a.python, b.python);
    assert.deepEqual([p1, p2].map((p) => p.join()).sort(), ['installing', 'waiting']);
    const installs = [...o1, ...o2].join('').match(/Successfully installed hearthtiny-1\.2\.3/g) ?? [];
    assert.equal(installs.length, 1);
    assert.equal(a.reused || b.reused, false);
    const p3: string[] = [];
    const c3 = await c.ensure(req('hearthtiny\n'), hooks(p3, []));
    assert.equal(c3.reused, true);
    assert.deepEqual(p3, []);
    for (const e of [a, b, c3]) e.release();
    assert.equal(envs().length, 1);
  });

  it('evicts the least recently used environment past the cap, never one in use', async () => {
    rmSync(join(dir, 'envs'), { recursive: true, force: true });
    const c = cache();
    const tiny = await c.ensure(req('hearthtiny\n'), hooks([], []));
    tiny.release();
    const two = await c.ensure(req('hearthtwo\n'), hooks([], []));
    two.release();
    // tiny used again: two is now the least recently used.
    (await c.ensure(req('hearthtiny\n'), hooks([], []))).release();
    const keyOf = async (t: string) => c.key(req(t));
    const size = (key: string) => (JSON.parse(readFileSync(join(dir, 'envs', `${key}.ready`), 'utf8')) as { bytes: number }).bytes;
    const [kTiny, kTwo, kThree] = await Promise.all(['hearthtiny\n', 'hearthtwo\n', 'hearththree\n'].map(keyOf));
    // Room for about two: building a third evicts one.
    const small = cache(Math.floor(size(kTiny!) * 2.5));
    const three = await small.ensure(req('hearththree\n'), hooks([], []));
    await small.evict();
    assert.deepEqual(envs().sort(), [kTiny, kThree].sort());
    three.release();
    // A cap below what one takes: everything not in use goes, the one in use stays.
    const none = cache(1);
    const inUse = await none.ensure(req('hearththree\n'), hooks([], []));
    await none.evict();
    assert.deepEqual(envs(), [kThree]);
    assert.ok(!envs().includes(kTwo!));
    inUse.release();
    await none.evict();
    assert.deepEqual(envs(), []);
  });

  it('a failed install names the requirement and pip\'s reason, and leaves nothing to reuse', async () => {
    const c = cache();
    const out: string[] = [];
    await assert.rejects(c.ensure(req('hearthtiny\nnosuchpkg-hearth>=2\n'), hooks([], out)), (e: Error) => {
      assert.match(e.message, /^could not install the packages of requirements\.txt \(pip exited with code 1\): ERROR: Could not find a version that satisfies the requirement nosuchpkg-hearth>=2/);
      return true;
    });
    assert.match(out.join(''), /nosuchpkg-hearth/);
    assert.equal(envs().includes(await c.key(req('hearthtiny\nnosuchpkg-hearth>=2\n'))), false);
  });

  it('an install is held to the job disk limit: stopped, with a reason that says so', async () => {
    const c = cache(2 ** 40, 2 << 20);
    await assert.rejects(c.ensure(req('hearthbig\n'), hooks([], [])), /^Error: disk limit: 2 MiB exceeded while installing the packages of requirements\.txt$/);
    assert.equal(envs().includes(await c.key(req('hearthbig\n'))), false);
  });

  it('an install cannot make the worker write or read through a link it planted, nor run its code', async () => {
    // setup.py links <env>/.hearth-ready (where the marker used to be) to a host file: the worker
    // wrote the marker through it (as root: /etc/shadow), and ran the environment's python (its .pth) itself.
    const c = cache();
    const e = await c.ensure(req('hearthlink\n'), hooks([], []));
    e.release();
    assert.equal(readFileSync(victim, 'utf8'), 'root:secret\n', 'the link\'s target is unchanged');
    rmSync(ranPth, { force: true });
    // A fresh cache (the worker restarted) reuses the environment without running its python.
    const again = await cache().ensure(req('hearthlink\n'), hooks([], []));
    assert.equal(again.reused, true);
    again.release();
    assert.equal(readFileSync(victim, 'utf8'), 'root:secret\n');
    assert.equal(existsSync(ranPth), false, 'the worker did not run the environment\'s python');
    // The environment's python still works, and does run the .pth: the test's own check is live.
    execFileSync(e.python, ['-c', 'pass'], { env: { ...process.env, HOME: '/nonexistent' } });
    assert.equal(existsSync(ranPth), true);
  });

  it('a requirements file with pip options is refused before pip runs: the provider\'s PIP_ONLY_BINARY holds', async () => {
    process.env.PIP_ONLY_BINARY = ':all:';
    try {
      const c = cache();
      // The provider's setting is live: hearthsrc is only an sdist here.
      await assert.rejects(c.ensure(req('hearthsrc\n'), hooks([], [])), /could not install the packages of requirements\.txt/);
      // In a requirements file, --no-binary :all: overrode it and pip built the renter's sdist.
      const phases: string[] = [];
      const out: string[] = [];
      const key = await c.key(req('--no-binary :all:\nhearthsrc\n'));
      await assert.rejects(c.ensure(req('--no-binary :all:\nhearthsrc\n'), hooks(phases, out)), /^Error: requirements\.txt line 1: "--no-binary :all:" is a pip option; the worker refuses option lines/);
      assert.deepEqual(phases, [], 'pip never ran');
      assert.deepEqual(out, []);
      assert.equal(envs().includes(key), false);
    } finally {
      delete process.env.PIP_ONLY_BINARY;
    }
  });

  it("the renter's build backend sees the job's environment and the provider's pip settings, never the worker's own variables", async () => {
    // An sdist with an in-tree build backend (the renter's code, run by pip) that prints its environment.
    const src = join(dir, 'sdist', 'hearthdump-0.1');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'pyproject.toml'), '[build-system]\nrequires = []\nbuild-backend = "dumpenv"\nbackend-path = ["."]\n\n[project]\nname = "hearthdump"\nversion = "0.1"\n');
    writeFileSync(
      join(src, 'dumpenv.py'),
      ['import json, os', 'def build_wheel(*args, **kwargs):', '    print("HEARTH-ENV " + json.dumps(dict(os.environ)), flush=True)', '    raise SystemExit(3)'].join('\n') + '\n',
    );
    const tarball = join(dir, 'hearthdump-0.1.tar.gz');
    execFileSync('tar', ['czf', tarball, '-C', join(dir, 'sdist'), 'hearthdump-0.1']);
    const provider = { AWS_SECRET_ACCESS_KEY: 'aws-secret-of-the-provider', HF_TOKEN: 'hf_token_of_the_provider', SSH_AUTH_SOCK: '/tmp/agent-of-the-provider' };
    Object.assign(process.env, provider);
    try {
      const out: string[] = [];
      await assert.rejects(cache().ensure(req(`hearthdump @ file://${tarball}\n`), hooks([], out)), /could not install the packages/);
      const text = out.join('');
      const m = /HEARTH-ENV (\{.*\})/.exec(text);
      assert.ok(m, `the backend ran and printed its environment:\n${text.slice(-2000)}`);
      const seen = JSON.parse(m[1]!) as Record<string, string>;
      for (const [k, v] of Object.entries(provider)) {
        assert.equal(seen[k], undefined, `${k} reached the install`);
        assert.ok(!text.includes(v));
      }
      // The provider's pip settings did reach it (the wheelhouse the installs use), and the machine's PATH.
      assert.equal(seen.PIP_FIND_LINKS, process.env.PIP_FIND_LINKS);
      assert.equal(seen.PATH, process.env.PATH);
    } finally {
      for (const k of Object.keys(provider)) delete process.env[k];
    }
  });

  it('pipFailure: the requirement pip was at, when its errors do not name one', () => {
    const stderr = 'error: subprocess-exited-with-error\n\n× python setup.py egg_info did not run successfully.\n│ exit code: 1\nERROR: metadata-generation-failed\n';
    assert.equal(pipFailure('requirements.txt', stderr, 'brokenpkg==1.0', 'exited with code 1'), 'could not install the packages of requirements.txt (pip exited with code 1): while installing brokenpkg==1.0: ERROR: metadata-generation-failed');
    assert.match(pipFailure('requirements.txt', '/usr/bin/python3: No module named pip\n', '', 'exited with code 1'), /the worker's Python has no pip/);
  });
});
