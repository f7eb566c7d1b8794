// The one way a run is submitted, by the CLI and by the extension alike: find the project root,
// upload it (only the blobs the broker lacks), then submit the job on a lease. A notebook entry
// runs as a notebook (every cell on a fresh kernel; the executed notebook comes back at its path).
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, parse, relative, resolve, sep } from 'node:path';
import { isNotebookEntry, type Job, type ManifestFile } from '../shared/protocol';
import type { BrokerClient } from './api';
import { toRelPosix } from './files';
import { isIgnored, uploadWorkspace, type UploadProgress, type UploadStats } from './workspace';

/** Files brought back when the person names none: weights and checkpoints, and outputs/. */
export const DEFAULT_OUTPUTS: readonly string[] = ['**/*.pt', '**/*.pth', '**/*.safetensors', '**/*.ckpt', 'outputs/**'];

/** What makes a folder a project's root: the nearest ancestor of the entry holding one of these. */
export const PROJECT_MARKERS: readonly string[] = ['.git', 'pyproject.toml', '.hearthignore'];

/**
 * The folder to upload for `entry` (an absolute path): the nearest folder at or above the entry's
 * that holds a project marker. The search stops below the home folder and the filesystem root
 * (a dotfiles repository in ~ must not make the whole home a project), or at `within` inclusive
 * (the extension's workspace folder). Without a marker: `within`, else the entry's own folder.
 */
export function findProjectRoot(entry: string, opts: { within?: string; home?: string } = {}): string {
  const start = dirname(resolve(entry));
  const within = opts.within === undefined ? undefined : resolve(opts.within);
  const home = resolve(opts.home ?? homedir());
  for (let dir = start; ; dir = dirname(dir)) {
    if (within !== undefined && !isInside(within, dir)) break;
    if (within === undefined && (dir === home || dir === parse(dir).root)) break;
    if (PROJECT_MARKERS.some((m) => existsSync(join(dir, m)))) return dir;
    if (dir === within || dirname(dir) === dir) break;
  }
  return within ?? start;
}

function isInside(root: string, p: string): boolean {
  const r = relative(root, p);
  return r === '' || (!r.startsWith('..' + sep) && r !== '..' && !isAbsolute(r));
}

/** Where a run's files come from: the root to upload and the entry relative to it. */
export function runLayout(entry: string, opts: { workdir?: string; within?: string } = {}): { root: string; entry: string } {
  const abs = resolve(entry);
  let root = opts.workdir !== undefined ? resolve(opts.workdir) : findProjectRoot(abs, { within: opts.within });
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new Error(`${root} is not a folder`);
  if (!isInside(root, abs) || root === abs) throw new Error(`${abs} is not inside ${root}: the entry must be inside the folder that is uploaded`);
  if (isIgnored(root, toRelPosix(root, abs))) {
    // The project's .gitignore / .hearthignore leaves the entry out (a scratch folder in a repo):
    // its own folder is what can run; a folder named with --workdir is the renter's word.
    if (opts.workdir !== undefined) throw new Error(`${toRelPosix(root, abs)} is ignored in ${root} (.gitignore or .hearthignore), so it would not be uploaded`);
    root = dirname(abs);
  }
  return { root, entry: toRelPosix(root, abs) };
}

export interface RunRequest {
  /** the folder uploaded as the job's workspace (from runLayout) */
  root: string;
  /** the script or notebook, relative to root, forward slashes */
  entry: string;
  leaseId: string;
  args?: string[];
  env?: Record<string, string>;
  outputs?: readonly string[];
  logdir?: string;
  /** the lease was taken for this run: the broker releases it when the run ends */
  releaseLease?: boolean;
  /** the packages file, relative to root (default: requirements.txt or pyproject.toml when there) */
  requirements?: string;
  onProgress?: (p: UploadProgress) => void;
  signal?: AbortSignal;
}

export type { UploadStats };

export interface SubmittedRun {
  job: Job;
  root: string;
  upload: UploadStats;
  /** what was uploaded, relative to root */
  files: ManifestFile[];
}

/**
 * The job's environment: the renter's, plus PYTHONPATH=. for a script, so `src/train.py` imports
 * a package at the project root as `PYTHONPATH=. python src/train.py` does from there (the job's
 * cwd is the root; Python's site makes '.' absolute at start, so a later chdir keeps it). A
 * PYTHONPATH the renter passes wins.
 */
export function jobEnv(entry: string, env: Record<string, string> = {}): Record<string, string> {
  if (isNotebookEntry(entry) || env.PYTHONPATH !== undefined) return env;
  return { PYTHONPATH: '.', ...env };
}

export async function submitRun(client: BrokerClient, r: RunRequest): Promise<SubmittedRun> {
  const manifest = await uploadWorkspace(client, r.root, { onProgress: r.onProgress, signal: r.signal });
  r.signal?.throwIfAborted();
  const job = await client.submitJob({
    leaseId: r.leaseId,
    entry: r.entry,
    args: r.args ?? [],
    env: jobEnv(r.entry, r.env),
    outputs: [...(r.outputs ?? DEFAULT_OUTPUTS)],
    logdir: r.logdir ?? 'runs',
    releaseLease: r.releaseLease ?? false,
    ...(r.requirements ? { requirements: r.requirements } : {}),
    manifest: { files: manifest.files },
  });
  return { job, root: r.root, upload: manifest.stats, files: manifest.files };
}
