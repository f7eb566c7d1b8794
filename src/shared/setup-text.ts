// What a person is told of a session's setup phase (the worker installing its packages before the
// run or kernel starts): the CLI prints it on stderr, the run panel shows it in its header and log.
import type { JobEvent } from './protocol';

export type SetupBody = Extract<JobEvent['body'], { type: 'setup' }>;

export function setupText(b: SetupBody): string {
  if (b.phase === 'installing') return `installing packages (${b.source})…`;
  if (b.phase === 'waiting') return `waiting for another run's install of the same packages (${b.source})…`;
  return b.reused ? `packages of ${b.source} already installed on this worker` : `packages of ${b.source} installed`;
}

/** The short status a header shows while the phase lasts; none once the packages are ready. */
export function setupStatus(b: SetupBody): string | undefined {
  if (b.phase === 'installing') return 'installing packages';
  if (b.phase === 'waiting') return 'waiting for packages';
  return undefined;
}
