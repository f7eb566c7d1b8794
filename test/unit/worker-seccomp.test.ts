// The hand-written seccomp program (src/worker/seccomp.ts): its bytes are what the kernel reads,
// so they are run here through a classic-BPF interpreter for both architectures, and the first
// instructions are checked against their encoding in include/uapi/linux/filter.h.
import assert from 'node:assert/strict';
import { evaluate, SECCOMP, seccompFilter, SYSCALLS } from '../../src/worker/seccomp';

const CLONE_NEWUSER = 0x10000000;
const CLONE_NEWNET = 0x40000000;
const THREAD_FLAGS = 0x003d0f00; // what glibc's pthread_create passes to clone

describe('worker seccomp filter', () => {
  for (const arch of ['x64', 'arm64'] as const) {
    describe(arch, () => {
      const t = SYSCALLS[arch];
      const filter = seccompFilter(arch)!;
      const run = (nr: number, args: number[] = [], a = t.auditArch) => evaluate(filter, { nr, arch: a, args });

      it('is whole instructions, every jump lands inside the program', () => {
        assert.equal(filter.length % 8, 0);
        const n = filter.length / 8;
        assert.ok(n < 256, 'short enough for 8-bit jumps');
        for (let i = 0; i < n; i++) {
          const code = filter.readUInt16LE(i * 8);
          if ((code & 0x07) !== 0x05) continue; // BPF_JMP
          assert.ok(i + 1 + filter.readUInt8(i * 8 + 2) < n);
          assert.ok(i + 1 + filter.readUInt8(i * 8 + 3) < n);
        }
      });

      it('starts by checking the architecture: ld [4]; jeq AUDIT_ARCH', () => {
        assert.deepEqual([...filter.subarray(0, 8)], [0x20, 0, 0, 0, 4, 0, 0, 0]);
        assert.equal(filter.readUInt16LE(8), 0x15);
        assert.equal(filter.readUInt32LE(12), t.auditArch);
      });

      it('refuses each listed call with EPERM', () => {
        for (const [name, nr] of Object.entries(t.deny)) assert.equal(run(nr), SECCOMP.EPERM, name);
        for (const name of ['mount', 'umount2', 'ptrace', 'bpf', 'keyctl', 'add_key', 'kexec_load', 'init_module', 'finit_module', 'unshare', 'setns', 'perf_event_open', 'userfaultfd', 'open_by_handle_at', 'process_vm_readv', 'reboot', 'swapon', 'pivot_root']) {
          assert.ok(t.deny[name] !== undefined, `${name} is in the table`);
        }
      });

      it('allows everything else: read, write, openat, mmap, futex, exit', () => {
        const allowed = arch === 'x64' ? [0, 1, 257, 9, 202, 60, 231] : [63, 64, 56, 222, 98, 93, 94];
        for (const nr of allowed) assert.equal(run(nr), SECCOMP.ALLOW, String(nr));
      });

      it('clone: threads and plain forks pass, new namespaces do not; clone3 is ENOSYS so libc falls back', () => {
        assert.equal(run(t.clone, [THREAD_FLAGS]), SECCOMP.ALLOW);
        assert.equal(run(t.clone, [17 /* SIGCHLD: fork */]), SECCOMP.ALLOW);
        assert.equal(run(t.clone, [CLONE_NEWUSER | 17]), SECCOMP.EPERM);
        assert.equal(run(t.clone, [CLONE_NEWNET]), SECCOMP.EPERM);
        assert.equal(run(t.clone3), SECCOMP.ENOSYS);
      });

      it('refuses calls of another ABI outright', () => {
        assert.equal(run(0, [], 0x40000003 /* AUDIT_ARCH_I386 */), SECCOMP.EPERM);
        assert.equal(run(0, [], arch === 'x64' ? SYSCALLS.arm64.auditArch : SYSCALLS.x64.auditArch), SECCOMP.EPERM);
      });
    });
  }

  it('x32 calls (nr | 0x40000000) on x86_64 are refused, whatever the number', () => {
    const f = seccompFilter('x64')!;
    assert.equal(evaluate(f, { nr: 0x40000000 | 1, arch: SYSCALLS.x64.auditArch }), SECCOMP.EPERM);
  });

  it('has no table for other architectures (the worker then says so)', () => {
    assert.equal(seccompFilter('ppc64'), null);
  });
});
