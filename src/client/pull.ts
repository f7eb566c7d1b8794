// Downloads a job's artifacts into a folder, keeping their relative paths. A partial download is
// kept as `<file>.part` and resumed with an HTTP Range request; every file is verified by sha256
// before it takes its final name, so a file under its real name is always whole.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Artifact } from '../shared/protocol';
import type { BrokerClient } from './api';
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
    const part = `${abs}.part`;
    let start = (await stat(part).catch(() => undefined))?.size ?? 0;
    if (start > a.size) {
      await rm(part, { force: true });
      start = 0;
    }
    let hash = createHash('sha256');
    if (start > 0) await sha256Into(part, hash);
    let got = start;
    report(got);
    if (a.size === 0) {
      await writeFile(part, '');
    } else if (start < a.size) {
      const res = await client.downloadBlob(a.sha256, { start, signal: opts.signal });
      // A server that ignores Range sends the whole blob: start the file over rather than append it.
      if (start > 0 && res.status !== 206) {
        start = 0;
        got = 0;
        hash = createHash('sha256');
      }
      const body = res.body;
      body.on('data', (c: Buffer) => {
        hash.update(c);
        got += c.length;
        report(got);
      });
      await pipeline(body, createWriteStream(part, { flags: start > 0 ? 'a' : 'w', highWaterMark: 1 << 20 }), { signal: opts.signal });
    }
    const digest = hash.digest('hex');
    if (digest !== a.sha256 || got !== a.size) {
      await rm(part, { force: true });
      throw new Error(`${a.path}: downloaded bytes do not match (sha256 ${digest.slice(0, 12)}…, ${got} bytes; expected ${a.sha256.slice(0, 12)}…, ${a.size} bytes)`);
    }
    await rename(part, abs);
    doneBytes += a.size;
    out.push({ artifact: a, absPath: abs, skipped: false, resumedFrom: start });
  }
  opts.onProgress?.({ file: '', doneBytes, totalBytes, filesDone: artifacts.length, filesTotal: artifacts.length });
  return out;
}

async function sha256Into(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
}
