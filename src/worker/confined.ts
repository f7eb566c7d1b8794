// How a process of a session is started on the provider's machine: in the sandbox (sandbox.ts)
// and under the limits (limits.ts). The session itself and the install of its packages both start
// this way, so an install (pip runs setup.py of the renter's packages) is as confined as a job.
import { lchown, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { JobCgroup as JobCgroupT, JobLimits, LimitBackend } from './limits';
import { JobCgroup, rlimitArgs } from './limits';
import { bwrapArgs, type PythonLocation, type Sandbox } from './sandbox';
import { attachInternet, type AttachedNetwork } from './session-network';

export interface Confinement {
  sandbox: Sandbox;
  limits: JobLimits;
  limitBackend: LimitBackend;
  isGpuHost: boolean;
}

export interface ConfinedCommand {
  file: string;
  argv: string[];
  /** the seccomp program to feed on SECCOMP_FD, when sandboxed with one */
  seccomp: Buffer | null;
  /** remove it when the process is gone */
  cgroup?: JobCgroupT;
  sandboxed: boolean;
  /** the namespace made for this process (internet mode): close it when the process is gone */
  network?: AttachedNetwork;
}

/**
 * The command that runs `command` (its [0] an interpreter at `python`) confined. Throws, with a
 * reason the renter may read, when it cannot be (no sandbox where one is required, no cgroup).
 */
export async function confinedCommand(
  c: Confinement,
  o: {
    /** the cgroup's name: the session id, or env-<key> for an install */
    name: string;
    workspace: string;
    home: string;
    /** where the interpreter lives (needed only when sandboxed) */
    python: () => Promise<PythonLocation>;
    command: string[];
    readOnly?: string[];
    mask?: string[];
    /** folders the process may read and write at their own paths (its account's Hugging Face cache) */
    binds?: string[];
  },
): Promise<ConfinedCommand> {
  let file = o.command[0]!;
  let argv = o.command.slice(1);
  let seccomp: Buffer | null = null;
  let network: AttachedNetwork | undefined;
  const sandbox = c.sandbox;
  if (sandbox.kind === 'unavailable') throw new Error(sandbox.reason);
  if (sandbox.kind === 'bwrap') {
    const python = await o.python();
    seccomp = sandbox.seccomp ?? null;
    const net = sandbox.network ?? { kind: 'host' };
    if (net.kind === 'internet') {
      try {
        network = await attachInternet(net);
      } catch (err) {
        throw new Error(`could not give the session its network: ${(err as Error).message}`);
      }
    }
    argv = bwrapArgs({
      workspace: o.workspace,
      home: o.home,
      hide: sandbox.hide,
      python,
      // The interpreter by the path it answered with (a pyenv shim on PATH is hidden in there).
      command: [python.executable, ...o.command.slice(1)],
      user: sandbox.user ?? null,
      seccomp: seccomp !== null,
      tmpBytes: c.limits.tmpBytes,
      readOnly: o.readOnly,
      mask: o.mask,
      binds: o.binds,
      network: network ? { kind: 'entered', resolvConf: network.resolvConf } : net.kind === 'none' ? { kind: 'none' } : { kind: 'host' },
    });
    file = sandbox.bwrap;
    // bwrap starts inside the namespace made for the session.
    if (network) ({ file, argv } = wrap(network.enter, file, argv));
  }
  // Limits: the process joins its cgroups before it runs any code of its own (a shell that writes
  // its pid there, then execs the rest); without cgroups, rlimits set by prlimit.
  const backend = c.limitBackend;
  let cgroup: JobCgroupT | undefined;
  try {
    if (backend.kind === 'rlimit') {
      ({ file, argv } = wrap(['prlimit', ...(await rlimitArgs(c.limits, c.isGpuHost)), '--'], file, argv));
    } else {
      try {
        cgroup = await JobCgroup.create(backend, o.name, c.limits);
      } catch (err) {
        throw new Error(`could not set the limits: ${(err as Error).message}`);
      }
      const joinCgroups = 'while [ "$1" != -- ]; do echo $$ > "$1" || { echo "hearth: could not join the job cgroup $1" >&2; exit 125; }; shift; done; shift; exec "$@"';
      ({ file, argv } = wrap(['/bin/sh', '-c', joinCgroups, 'sh', ...cgroup.procsFiles, '--'], file, argv));
    }
  } catch (err) {
    network?.close();
    throw err;
  }
  return { file, argv, seccomp, cgroup, sandboxed: sandbox.kind === 'bwrap', network };
}

/** `prefix file argv…` as a command of its own (prefix[0] runs the rest). */
function wrap(prefix: string[], file: string, argv: string[]): { file: string; argv: string[] } {
  return { file: prefix[0]!, argv: [...prefix.slice(1), file, ...argv] };
}

/** Gives a tree to the job user, never following a link (a job could not have planted one yet, but still). */
export async function chownTree(root: string, uid: number, gid: number): Promise<void> {
  await lchown(root, uid, gid);
  for (const e of await readdir(root, { withFileTypes: true })) {
    const p = join(root, e.name);
    if (e.isDirectory()) await chownTree(p, uid, gid);
    else await lchown(p, uid, gid);
  }
}
