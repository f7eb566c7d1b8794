// Sessions that run Hearth's own Python rather than a file of the renter's. A job whose entry is a
// Jupyter notebook runs every cell, in order, on a fresh IPython kernel (resources/hearth_nbrun.py);
// a kernel session runs resources/hearth_kernel.py, which keeps one kernel and takes requests on
// stdin. Both speak to ipykernel through jupyter_client on the provider's interpreter, and are
// copied into the job folder, so the sandboxed job reads them there whatever the install looks like.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isNotebookEntry } from '../shared/protocol';

export const NOTEBOOK_RUNNER = 'hearth_nbrun.py';
export const KERNEL_BRIDGE = 'hearth_kernel.py';
/** where, in the job folder, they are put */
export const RUNNER_REL = '.hearth/nbrun.py';
export const BRIDGE_REL = '.hearth/kernel.py';


const cached = new Map<string, string>();

/** A resource's source, from resources/ next to dist/ (the CLI) or the repository root (tests). */
export function resourceSource(name: string): string {
  const hit = cached.get(name);
  if (hit !== undefined) return hit;
  for (const dir of [join(__dirname, '..', 'resources'), join(__dirname, '..', '..', 'resources')]) {
    try {
      const text = readFileSync(join(dir, name), 'utf8');
      cached.set(name, text);
      return text;
    } catch {
      /* not here */
    }
  }
  throw new Error(`${name} is missing from this Hearth install`);
}

function place(workspace: string, name: string, rel: string): void {
  mkdirSync(join(workspace, '.hearth'), { recursive: true, mode: 0o755 });
  writeFileSync(join(workspace, rel), resourceSource(name), { mode: 0o644 });
}

/** The interpreter's arguments for a kernel session. */
export function kernelArgv(workspace: string, idleMinutes: number): string[] {
  place(workspace, KERNEL_BRIDGE, BRIDGE_REL);
  return ['-u', BRIDGE_REL, '--idle-minutes', String(idleMinutes)];
}

/** The interpreter's arguments for a job: the entry itself, or the runner over a notebook entry. */
export function entryArgv(workspace: string, entry: string, args: readonly string[]): string[] {
  if (!isNotebookEntry(entry)) return ['-u', entry, ...args];
  place(workspace, NOTEBOOK_RUNNER, RUNNER_REL);
  return ['-u', RUNNER_REL, '--events', entry, ...args];
}
