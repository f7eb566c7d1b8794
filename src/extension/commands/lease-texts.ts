// What the lease prompts say: the price of the hours asked, and what a release would stop. Pure
// functions (no vscode), unit-tested in Node.
import { leasePriceText } from '../../shared/money';
import { isTerminal, type Job, type Lease } from '../../shared/protocol';

/** Hours as typed in the input box, or undefined when they are not a valid lease length. */
export function parseHours(v: string): number | undefined {
  const n = Number(v);
  return v.trim() !== '' && Number.isFinite(n) && n > 0 && n <= 720 ? n : undefined;
}

/** The line under the hours box: "A100 · 2.5 cr/h · 4 h = 10 cr", or undefined for invalid hours. */
export function hoursPriceMessage(o: { gpuModel: string; pricePerHour: number; count?: number }, typed: string): string | undefined {
  const hours = parseHours(typed);
  return hours === undefined ? undefined : leasePriceText(o, hours);
}

/** The runs a release would stop: the lease's jobs and kernels not yet ended, oldest first. */
export function jobsOnLease(jobs: readonly Job[], leaseId: string): Job[] {
  return jobs.filter((j) => j.leaseId === leaseId && !isTerminal(j.status)).sort((a, b) => a.createdAt - b.createdAt);
}

/**
 * The modal warning before releasing a lease something runs on, naming it; undefined when nothing
 * does (the release needs no confirmation then).
 */
export function releaseWarning(lease: Pick<Lease, 'id' | 'gpuModel' | 'count'>, jobs: readonly Job[]): string | undefined {
  const open = jobsOnLease(jobs, lease.id);
  const first = open[0];
  if (!first) return undefined;
  const what = first.kind === 'kernel' ? `a kernel session (${first.id})` : `${first.entry} (${first.id})`;
  const more = open.length > 1 ? ` and ${open.length - 1} more` : '';
  const verb = open.length > 1 ? 'are' : 'is';
  const state = first.status === 'running' ? 'running' : 'waiting';
  return `Hearth: ${what}${more} ${verb} ${state} on ${lease.gpuModel} ×${lease.count} (${lease.id}). Releasing the lease stops ${open.length > 1 ? 'them' : 'it'}; files already written are still uploaded.`;
}
