// The seccomp filter every sandboxed job runs under: a classic-BPF program that bwrap loads
// (`--seccomp FD`) as the last step before it executes the job, so bwrap itself may still create
// its namespaces. It refuses, with EPERM, the system calls no training job needs and that
// container runtimes refuse by default (Docker's default profile): mounting, loading kernel code,
// rebooting, tracing or reading other processes, the kernel keyring, new namespaces, eBPF, perf
// and userfaultfd. Calls from another ABI (32-bit int 0x80, x32) are refused outright: the
// filter's numbers are the native ones, and the same number means another call there.
//
// Written by hand because no maintained seccomp compiler exists for Node (npm has only
// unmaintained native bindings to libseccomp) and the program is small: a list of numbers.

/** seccomp_data offsets (include/uapi/linux/seccomp.h) */
const OFF_NR = 0;
const OFF_ARCH = 4;
/** low 32 bits of args[0] on a little-endian machine */
const OFF_ARG0_LO = 16;

// Classic BPF opcodes (include/uapi/linux/filter.h).
const LD_W_ABS = 0x20;
const JMP_JEQ_K = 0x15;
const JMP_JGE_K = 0x35;
const JMP_JSET_K = 0x45;
const RET_K = 0x06;

const SECCOMP_RET_ALLOW = 0x7fff0000;
const SECCOMP_RET_ERRNO = 0x00050000;
const EPERM = 1;
const ENOSYS = 38;

const X32_SYSCALL_BIT = 0x40000000;
/** CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET */
const CLONE_NEW_NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;

export interface SyscallTable {
  /** AUDIT_ARCH_* of the native ABI */
  auditArch: number;
  /** whether x32 calls (nr | 0x40000000) share the native arch value */
  x32: boolean;
  /** refused with EPERM */
  deny: Record<string, number>;
  clone: number;
  clone3: number;
}

/** Calls with the same number on x86_64 and the generic table (new calls are numbered alike). */
const COMMON_NEW = { open_tree: 428, move_mount: 429, fsopen: 430, fsconfig: 431, fsmount: 432, fspick: 433, mount_setattr: 442, io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427 };

export const SYSCALLS: Record<'x64' | 'arm64', SyscallTable> = {
  // arch/x86/entry/syscalls/syscall_64.tbl
  x64: {
    auditArch: 0xc000003e,
    x32: true,
    clone: 56,
    clone3: 435,
    deny: {
      ...COMMON_NEW,
      mount: 165, umount2: 166, pivot_root: 155, swapon: 167, swapoff: 168, reboot: 169,
      kexec_load: 246, kexec_file_load: 320, init_module: 175, finit_module: 313, delete_module: 176,
      create_module: 174, get_kernel_syms: 177, query_module: 178, uselib: 134, _sysctl: 156, nfsservctl: 180,
      bpf: 321, perf_event_open: 298, userfaultfd: 323, ptrace: 101, process_vm_readv: 310, process_vm_writev: 311, kcmp: 312,
      add_key: 248, request_key: 249, keyctl: 250, setns: 308, unshare: 272, open_by_handle_at: 304,
      acct: 163, settimeofday: 164, clock_settime: 227, syslog: 103, quotactl: 179, lookup_dcookie: 212, vhangup: 153,
      iopl: 172, ioperm: 173,
    },
  },
  // include/uapi/asm-generic/unistd.h
  arm64: {
    auditArch: 0xc00000b7,
    x32: false,
    clone: 220,
    clone3: 435,
    deny: {
      ...COMMON_NEW,
      mount: 40, umount2: 39, pivot_root: 41, swapon: 224, swapoff: 225, reboot: 142,
      kexec_load: 104, kexec_file_load: 294, init_module: 105, finit_module: 273, delete_module: 106, nfsservctl: 42,
      bpf: 280, perf_event_open: 241, userfaultfd: 282, ptrace: 117, process_vm_readv: 270, process_vm_writev: 271, kcmp: 272,
      add_key: 217, request_key: 218, keyctl: 219, setns: 268, unshare: 97, open_by_handle_at: 265,
      acct: 89, settimeofday: 170, clock_settime: 112, syslog: 116, quotactl: 60, lookup_dcookie: 18, vhangup: 58,
    },
  },
};

type Insn = { code: number; k: number; jt?: string; jf?: string; label?: string };

/**
 * The filter for this machine's architecture as bytes of `struct sock_filter[]`, or null where
 * no table exists (the worker then says so and runs jobs without one).
 */
export function seccompFilter(arch: string = process.arch): Buffer | null {
  const table = (SYSCALLS as Record<string, SyscallTable | undefined>)[arch];
  return table ? assemble(program(table)) : null;
}

function program(t: SyscallTable): Insn[] {
  const p: Insn[] = [
    { code: LD_W_ABS, k: OFF_ARCH },
    { code: JMP_JEQ_K, k: t.auditArch, jt: 'native', jf: 'eperm' },
    { code: LD_W_ABS, k: OFF_NR, label: 'native' },
  ];
  if (t.x32) p.push({ code: JMP_JGE_K, k: X32_SYSCALL_BIT, jt: 'eperm' });
  for (const nr of [...new Set(Object.values(t.deny))].sort((a, b) => a - b)) p.push({ code: JMP_JEQ_K, k: nr, jt: 'eperm' });
  // clone3 passes its flags in memory, which a filter cannot read: ENOSYS makes the C library
  // fall back to clone, whose flags it can (Docker does the same).
  p.push({ code: JMP_JEQ_K, k: t.clone3, jt: 'enosys' });
  p.push({ code: JMP_JEQ_K, k: t.clone, jf: 'allow' });
  p.push({ code: LD_W_ABS, k: OFF_ARG0_LO });
  p.push({ code: JMP_JSET_K, k: CLONE_NEW_NAMESPACES, jt: 'eperm', jf: 'allow' });
  p.push({ code: RET_K, k: SECCOMP_RET_ALLOW, label: 'allow' });
  p.push({ code: RET_K, k: SECCOMP_RET_ERRNO | EPERM, label: 'eperm' });
  p.push({ code: RET_K, k: SECCOMP_RET_ERRNO | ENOSYS, label: 'enosys' });
  return p;
}

function assemble(p: Insn[]): Buffer {
  const at = new Map<string, number>();
  p.forEach((insn, i) => insn.label && at.set(insn.label, i));
  const buf = Buffer.alloc(p.length * 8);
  p.forEach((insn, i) => {
    const rel = (label: string | undefined): number => {
      if (label === undefined) return 0; // fall through
      const off = at.get(label)! - (i + 1);
      if (off < 0 || off > 255) throw new Error(`seccomp: jump to ${label} out of range (${off})`);
      return off;
    };
    // struct sock_filter { __u16 code; __u8 jt; __u8 jf; __u32 k; } in the machine's byte order
    // (both tables above are little-endian machines).
    buf.writeUInt16LE(insn.code, i * 8);
    buf.writeUInt8(rel(insn.jt), i * 8 + 2);
    buf.writeUInt8(rel(insn.jf), i * 8 + 3);
    buf.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
  });
  return buf;
}

/** Runs the program on one seccomp_data, as the kernel would: for unit tests of the encoding. */
export function evaluate(filter: Buffer, data: { nr: number; arch: number; args?: number[] }): number {
  const mem = Buffer.alloc(64);
  mem.writeInt32LE(data.nr, OFF_NR);
  mem.writeUInt32LE(data.arch >>> 0, OFF_ARCH);
  (data.args ?? []).forEach((a, i) => mem.writeBigUInt64LE(BigInt.asUintN(64, BigInt(a)), 16 + 8 * i));
  let acc = 0;
  for (let pc = 0; pc < filter.length / 8; ) {
    const code = filter.readUInt16LE(pc * 8);
    const jt = filter.readUInt8(pc * 8 + 2);
    const jf = filter.readUInt8(pc * 8 + 3);
    const k = filter.readUInt32LE(pc * 8 + 4);
    switch (code) {
      case LD_W_ABS:
        acc = mem.readUInt32LE(k);
        pc++;
        break;
      case JMP_JEQ_K:
        pc += 1 + (acc === k ? jt : jf);
        break;
      case JMP_JGE_K:
        pc += 1 + (acc >= k ? jt : jf);
        break;
      case JMP_JSET_K:
        pc += 1 + ((acc & k) !== 0 ? jt : jf);
        break;
      case RET_K:
        return k;
      default:
        throw new Error(`unknown opcode ${code}`);
    }
  }
  throw new Error('fell off the end of the program');
}

export const SECCOMP = { ALLOW: SECCOMP_RET_ALLOW, EPERM: SECCOMP_RET_ERRNO | EPERM, ENOSYS: SECCOMP_RET_ERRNO | ENOSYS };
