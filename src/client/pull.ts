// Downloads a job's artifacts into a folder, keeping their relative paths, each with
// downloadVerified: a partial download is kept as `<file>.part` and resumed with an HTTP Range
// request, and every file is verified by sha256 before it takes its final name.
import { lstat, mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Artifact } from '../shared/protocol';
import type { BrokerClient } from './api';
import { DownloadMismatchError, downloadVerified } from './download';
import { confinedPath, sha256File } from './files';

export interface PullProgress {
  file: string;
  doneBytes: number;
  totalBytes: number;
  filesDone: number;
  filesTotal: number;
}

export interface PulledFile {
  artifact: Artifact;
  absPath: string;
  /** already present with the right hash: nothing downloaded */
  skipped: boolean;
  /** bytes taken from an earlier partial download */
  resumedFrom: number;
}

export class PullConflictError extends Error {
  constructor(
    readonly destDir: string,
    readonly paths: string[],
  ) {
    const shown = paths.slice(0, 5).join(', ') + (paths.length > 5 ? ` and ${paths.length - 5} more` : '');
    super(`${paths.length} file(s) in ${destDir} differ from the job's artifacts and would be overwritten: ${shown}; nothing was written (pull into another --dest, or pass --force to replace them)`);
  }
}

export async function pullArtifacts(
  client: BrokerClient,
  jobId: string,
  destDir: string,
  opts: {
    onProgress?: (p: PullProgress) => void;
    signal?: AbortSignal;
    artifacts?: Artifact[];
    /** replace local files that differ from the artifacts (else: PullConflictError, nothing written) */
    force?: boolean;
  } = {},
): Promise<PulledFile[]> {
  const artifacts = opts.artifacts ?? (await client.artifacts(jobId));
  // A pull never silently replaces a file it did not bring: a worker's artifact named like the
  // renter's own file (train.py, a checkpoint they edited) would otherwise overwrite it.
  if (!opts.force) {
    const conflicts: string[] = [];
    for (const a of artifacts) {
      const abs = confinedPath(destDir, a.path);
      const st = await lstat(abs).catch(() => undefined);
      if (st && !(st.isFile() && st.size === a.size && (await sha256File(abs)) === a.sha256)) conflicts.push(a.path);
    }
    if (conflicts.length) throw new PullConflictError(destDir, conflicts);
  }
  const totalBytes = artifacts.reduce((n, a) => n + a.size, 0);
  let doneBytes = 0;
  const out: PulledFile[] = [];
  for (const [i, a] of artifacts.entries()) {
    opts.signal?.throwIfAborted();
    const abs = confinedPath(destDir, a.path);
    await mkdir(dirname(abs), { recursive: true });
    const report = (n: number) =>
      opts.onProgress?.({ file: a.path, doneBytes: doneBytes + n, totalBytes, filesDone: i, filesTotal: artifacts.length });

    const existing = await stat(abs).catch(() => undefined);
    if (existing?.isFile() && existing.size === a.size && (await sha256File(abs)) === a.sha256) {
      doneBytes += a.size;
      report(0);
      out.push({ artifact: a, absPath: abs, skipped: true, resumedFrom: 0 });
      continue;
    }
    let start: number;
    try {
      ({ resumedFrom: start } = await downloadVerified(client, a.sha256, a.size, abs, { signal: opts.signal, onBytes: report }));
    } catch (err) {
      if (err instanceof DownloadMismatchError) throw new Error(`${a.path}: ${err.message}`);
      throw err;
    }
    doneBytes += a.size;
    out.push({ artifact: a, absPath: abs, skipped: false, resumedFrom: start });
  }
  opts.onProgress?.({ file: '', doneBytes, totalBytes, filesDone: artifacts.length, filesTotal: artifacts.length });
  return out;
}
