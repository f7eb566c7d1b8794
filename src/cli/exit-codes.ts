// What `hearth` exits with. A run's outcome reads as the job's own: its exit code, or 128+N when
// a signal N killed it (as a shell says it: SIGSEGV 139, SIGKILL 137). Hearth's own outcomes use
// codes a training script rarely exits with: the sysexits.h ones for usage and an unreachable
// broker, timeout(1)'s 124 for a lease that ran out (of time or money), and 130 (as Ctrl-C) for a cancelled job.
import { constants } from 'node:os';
import type { JobStatus } from '../shared/protocol';

export const EXIT = {
  ok: 0,
  /** a job that failed without a code of its own, or a request the broker refused */
  error: 1,
  /** a bad flag, argument or file (sysexits EX_USAGE) */
  usage: 64,
  /** the broker cannot be reached (sysexits EX_UNAVAILABLE) */
  unreachable: 69,
  /** the job's worker was lost; run it again (sysexits EX_TEMPFAIL) */
  workerLost: 75,
  /** the lease ran out while the job ran (its time, its cost cap or the account's spend limit), as timeout(1) says a limit */
  leaseExpired: 124,
  /** the job was cancelled (Ctrl-C, `hearth cancel`, its lease released) */
  cancelled: 130,
} as const;

/** How a job ended, from its last status event (or the job row, which has no signal). */
export interface Ending {
  status: JobStatus;
  exitCode?: number | null;
  signal?: string | null;
  reason?: string | null;
}

export function signalNumber(name: string): number | undefined {
  return (constants.signals as Record<string, number>)[name];
}

/** The exit code of `hearth run` / `hearth logs --follow` for a job that ended so. */
export function exitCodeOf(e: Ending): number {
  switch (e.status) {
    case 'succeeded':
      return EXIT.ok;
    case 'cancelled':
      return /^(lease expired\b|lease_cap:|spend_limit:)/.test(e.reason ?? '') ? EXIT.leaseExpired : EXIT.cancelled;
    case 'lost':
      return EXIT.workerLost;
    case 'failed': {
      const sig = e.signal ?? /killed by (SIG[A-Z0-9]+)/.exec(e.reason ?? '')?.[1];
      const n = sig ? signalNumber(sig) : undefined;
      if (n !== undefined) return 128 + n;
      return e.exitCode && e.exitCode > 0 && e.exitCode < 256 ? e.exitCode : EXIT.error;
    }
    default:
      return EXIT.error;
  }
}
