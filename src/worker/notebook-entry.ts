// A job whose entry is a Jupyter notebook runs every cell, in order, on a fresh IPython kernel:
// the worker starts resources/hearth_nbrun.py (jupyter_client + ipykernel on the provider's
// interpreter) instead of `python -u ENTRY`. The runner is copied into the job folder, so the
// sandboxed job reads it there whatever the worker's install looks like.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const NOTEBOOK_RUNNER = 'hearth_nbrun.py';
/** where, in the job folder, the runner is put */
export const RUNNER_REL = '.hearth/nbrun.py';

export const isNotebook = (entry: string): boolean => /\.ipynb$/i.test(entry);

let cached: string | undefined;

/** The runner's source, from resources/ next to dist/ (the CLI) or the repository root (tests). */
export function notebookRunnerSource(): string {
  if (cached !== undefined) return cached;
  for (const dir of [join(__dirname, '..', 'resources'), join(__dirname, '..', '..', 'resources')]) {
    try {
      return (cached = readFileSync(join(dir, NOTEBOOK_RUNNER), 'utf8'));
    } catch {
      /* not here */
    }
  }
  throw new Error(`${NOTEBOOK_RUNNER} is missing from this Hearth install`);
}

/** The interpreter's arguments for a job: the entry itself, or the runner over a notebook entry. */
export function entryArgv(workspace: string, entry: string, args: readonly string[]): string[] {
  if (!isNotebook(entry)) return ['-u', entry, ...args];
  mkdirSync(join(workspace, '.hearth'), { recursive: true, mode: 0o755 });
  writeFileSync(join(workspace, RUNNER_REL), notebookRunnerSource(), { mode: 0o644 });
  return ['-u', RUNNER_REL, entry, ...args];
}
