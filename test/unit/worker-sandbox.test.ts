// The bwrap command line and the mapping of its exit status, without running bwrap.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { bwrapArgs, bwrapStatus, prepareSandbox, resolveJobUser } from '../../src/worker/sandbox';

/** The (flag, operands) pairs of a bwrap command line up to `--`. */
function mounts(args: string[]): string[][] {
  const arity: Record<string, number> = {
    '--ro-bind': 2, '--bind': 2, '--dev-bind': 2, '--tmpfs': 1, '--dev': 1, '--proc': 1, '--chdir': 1,
    '--perms': 1, '--size': 1, '--dir': 1, '--remount-ro': 1, '--seccomp': 1, '--cap-add': 1, '--cap-drop': 1,
  };
  const out: string[][] = [];
  for (let i = 0; i < args.length && args[i] !== '--'; i++) {
    const n = arity[args[i]!] ?? 0;
    out.push(args.slice(i, i + 1 + n));
    i += n;
  }
  return out;
}

/** What hides the host's folders: the tmpfs mounts but those masking kernel files and /dev/shm. */
const hiding = (m: string[][]) => m.filter((x) => x[0] === '--tmpfs' && !/^\/(proc|sys)\//.test(x[1]!) && x[1] !== '/dev/shm').map((x) => x[1]);
/** Read-only binds but the kernel files made read-only or masked. */
const roBinds = (m: string[][]) => m.filter((x) => x[0] === '--ro-bind' && !/^\/(proc|sys)\//.test(x[2]!));

describe('worker sandbox: bwrap arguments', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(os.tmpdir(), 'hearth-sandbox-unit-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('hides parents before children, never "/", binds the job folder last and runs the command after --', () => {
    const home = join(dir, 'home');
    const data = join(home, '.hearth');
    const ws = join(data, 'worker', 'jobs', 'job_1');
    mkdirSync(ws, { recursive: true });
    const args = bwrapArgs({
      workspace: ws,
      hide: [join(data, 'worker'), data, '/', join(dir, 'does-not-exist'), home],
      python: { executable: '/usr/bin/python3', needs: ['/usr', '/usr'] },
      command: ['/usr/bin/python3', '-u', 'main.py', '--lr', '1'],
    });
    const m = mounts(args);
    assert.deepEqual(hiding(m), ['/tmp', home, data, join(data, 'worker')]);
    // Only the job folder is writable, after everything that hides, then cwd is there.
    assert.deepEqual(m.filter((x) => x[0] === '--bind'), [['--bind', ws, ws]]);
    const bindAt = m.findIndex((x) => x[0] === '--bind');
    assert.ok(m.slice(bindAt + 1).every((x) => x[0] === '--chdir'));
    assert.deepEqual(m[m.length - 1], ['--chdir', ws]);
    assert.deepEqual(args.slice(0, 4), ['--die-with-parent', '--new-session', '--cap-drop', 'ALL']);
    assert.ok(args.includes('--unshare-ipc') && args.includes('--unshare-uts'));
    assert.ok(!args.includes('--unshare-net') && !args.includes('--unshare-all'), 'the network stays shared');
    assert.deepEqual(args.slice(args.indexOf('--') + 1), ['/usr/bin/python3', '-u', 'main.py', '--lr', '1']);
    // /usr is visible anyway: nothing is bound back for it.
    assert.deepEqual(roBinds(m), [['--ro-bind', '/', '/']]);
  });

  it('binds back, read-only, an interpreter living under a hidden folder, but nothing that uncovers one', () => {
    const home = join(dir, 'home');
    const prefix = join(home, '.pyenv', 'versions', '3.11.7');
    mkdirSync(join(prefix, 'bin'), { recursive: true });
    const ws = join(dir, 'w', 'jobs', 'j');
    mkdirSync(ws, { recursive: true });
    // A symlinked home is hidden at its real place.
    symlinkSync(home, join(dir, 'home-link'));
    const args = bwrapArgs({
      workspace: ws,
      hide: [join(dir, 'home-link'), join(dir, 'w')],
      // home itself would uncover the whole of $HOME; a missing user site is skipped.
      python: { executable: join(prefix, 'bin', 'python3.11'), needs: [prefix, home, join(home, '.local', 'lib', 'site-packages')] },
      command: ['x'],
    });
    const m = mounts(args);
    assert.deepEqual(hiding(m), ['/tmp', join(dir, 'w'), home]);
    assert.deepEqual(roBinds(m), [['--ro-bind', '/', '/'], ['--ro-bind', prefix, prefix]]);
    const at = (flag: string, p: string) => m.findIndex((x) => x[0] === flag && x[1] === p);
    assert.ok(at('--tmpfs', home) < at('--ro-bind', prefix), 'bound back after the tmpfs that hides it');
  });

  it('brings back extra read-only paths (a wheelhouse under /tmp) and masks files with /dev/null, never inside a hidden folder', () => {
    const ws = join(dir, 'w', 'jobs', 'j');
    mkdirSync(ws, { recursive: true });
    const wheels = join(dir, 'wheels');
    mkdirSync(wheels);
    // Any file outside the hidden folders and /tmp stands for /etc/pip.conf (nothing runs here).
    const conf = '/etc/passwd';
    const hiddenConf = join(dir, 'w', 'pip.conf');
    writeFileSync(hiddenConf, '[global]\n');
    const args = bwrapArgs({
      workspace: ws,
      hide: [join(dir, 'w')],
      python: { executable: '/usr/bin/python3', needs: [] },
      command: ['x'],
      readOnly: [wheels],
      mask: [conf, hiddenConf, join(dir, 'pip.conf'), '/etc/no-such-pip.conf'],
    });
    const m = mounts(args);
    // os.tmpdir() is /tmp here: the sandbox's own tmpfs covers it, so the wheelhouse comes back.
    if (wheels.startsWith('/tmp/')) assert.deepEqual(roBinds(m).find((x) => x[1] === wheels), ['--ro-bind', wheels, wheels]);
    assert.deepEqual(roBinds(m).filter((x) => x[1] === '/dev/null'), [['--ro-bind', '/dev/null', conf]]);
    const at = (flag: string, p: string) => m.findIndex((x) => x[0] === flag && x[x.length - 1] === p);
    assert.ok(at('--ro-bind', conf) > at('--bind', ws), 'masks come after every bind');
  });

  it('maps 128+N from bwrap back to signal N, leaves other codes and real signals alone', () => {
    assert.deepEqual(bwrapStatus(137, null), [null, 'SIGKILL']);
    assert.deepEqual(bwrapStatus(143, null), [null, 'SIGTERM']);
    assert.deepEqual(bwrapStatus(3, null), [3, null]);
    assert.deepEqual(bwrapStatus(0, null), [0, null]);
    assert.deepEqual(bwrapStatus(128, null), [128, null]);
    assert.deepEqual(bwrapStatus(255, null), [255, null]);
    assert.deepEqual(bwrapStatus(null, 'SIGKILL'), [null, 'SIGKILL']);
  });

  it('none never probes; a bwrap that is not there: auto warns once and runs unsandboxed, bwrap makes jobs fail', async function () {
    if (process.getuid?.() === 0) this.skip(); // root: the next test
    const warnings: string[] = [];
    const warn = (m: string) => warnings.push(m);
    assert.deepEqual(await prepareSandbox({ mode: 'none', bwrap: '/nonexistent/bwrap', hide: [], warn }), { kind: 'none' });
    assert.deepEqual(warnings, []);
    assert.deepEqual(await prepareSandbox({ mode: 'auto', bwrap: '/nonexistent/bwrap', hide: [], warn }), { kind: 'none' });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /UNSANDBOXED.*apt-get install bubblewrap.*--sandbox none/);
    const req = await prepareSandbox({ mode: 'bwrap', bwrap: '/nonexistent/bwrap', hide: [], warn });
    assert.equal(req.kind, 'unavailable');
    assert.match(req.kind === 'unavailable' ? req.reason : '', /--sandbox bwrap.*\/nonexistent\/bwrap.*ENOENT/);
    assert.equal(warnings.length, 1);
  });

  it('a root worker never runs jobs unsandboxed: none, or auto without bwrap, make its jobs fail with why', async function () {
    if (process.getuid?.() !== 0) this.skip();
    const warnings: string[] = [];
    const warn = (m: string) => warnings.push(m);
    for (const mode of ['none', 'auto', 'bwrap'] as const) {
      const s = await prepareSandbox({ mode, bwrap: '/nonexistent/bwrap', hide: [], warn });
      assert.equal(s.kind, 'unavailable', mode);
      assert.match(s.kind === 'unavailable' ? s.reason : '', mode === 'bwrap' ? /--sandbox bwrap/ : /run as root runs jobs only in the sandbox \(as nobody\)/);
    }
    assert.deepEqual(warnings, []);
  });

  it('resolves --job-user by name, uid or uid:gid, and never to root', () => {
    const passwd = 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nhearth-job:x:998:997::/:/usr/sbin/nologin\n';
    assert.deepEqual(resolveJobUser('nobody', passwd), { uid: 65534, gid: 65534, name: 'nobody' });
    assert.deepEqual(resolveJobUser('hearth-job', passwd), { uid: 998, gid: 997, name: 'hearth-job' });
    assert.deepEqual(resolveJobUser('998', passwd), { uid: 998, gid: 997, name: '998' });
    assert.deepEqual(resolveJobUser('1234:1235', passwd), { uid: 1234, gid: 1235, name: '1234:1235' });
    assert.deepEqual(resolveJobUser('4321', passwd), { uid: 4321, gid: 4321, name: '4321' });
    assert.throws(() => resolveJobUser('root', passwd), /must not run as root/);
    assert.throws(() => resolveJobUser('0', passwd), /must not run as root/);
    assert.throws(() => resolveJobUser('1000:0', passwd), /must not run as root/);
    assert.throws(() => resolveJobUser('nosuch', passwd), /no user named "nosuch"/);
  });

  it('a root worker\'s job: setpriv inside the sandbox, only the setuid capabilities kept for it, seccomp last, kernel files locked', () => {
    const ws = join(dir, 'private', 'jobs', 'j');
    mkdirSync(ws, { recursive: true });
    chmodSync(join(dir, 'private'), 0o700);
    const user = { uid: 65534, gid: 65534, name: 'nobody' };
    const args = bwrapArgs({ workspace: ws, home: join(dir, 'private', 'homes', 'j'), hide: [], python: { executable: '/usr/bin/python3', needs: [] }, command: ['python3'], user, seccomp: true });
    const m = mounts(args);
    const cap = m.filter((x) => x[0] === '--cap-add').map((x) => x[1]);
    assert.deepEqual(cap, ['CAP_SETUID', 'CAP_SETGID', 'CAP_SETPCAP']);
    assert.deepEqual(args.slice(args.indexOf('--') + 1), ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--', 'python3']);
    assert.deepEqual(m[m.length - 1], ['--seccomp', '3']);
    // The topmost 0700 folder on the way (mkdtemp's) is an empty tmpfs inside, and the folders
    // below it searchable.
    assert.ok(hiding(m).includes(dir), hiding(m).join(' '));
    assert.ok(args.join(' ').includes(`--perms 0755 --dir ${join(dir, 'private', 'jobs')}`));
    assert.ok(m.some((x) => x[0] === '--ro-bind' && x[1] === '/proc/sys' && x[2] === '/proc/sys'));
    const tmp = args.indexOf('/tmp');
    assert.deepEqual(args.slice(tmp - 5, tmp + 1), ['--perms', '1777', '--size', String(2 ** 30), '--tmpfs', '/tmp']);
  });

});
