// Secret values out of what a job leaves behind, as out of its log (secret-mask.ts): an artifact's
// path, and the outputs of an executed notebook. A notebook run writes every cell's outputs into
// the .ipynb it hands back, so a value its cells printed (masked in the log) would come back raw
// with `hearth pull` and go on to the Hub with `hearth push`. Other files are the program's bytes
// (weights, a CSV, a pickle): the broker cannot know where a value sits in them and leaves them
// as they are (SECURITY.md says so).
import { createHash } from 'node:crypto';
import { isNotebookEntry, type Artifact } from '../shared/protocol';
import { maskedArtifactPath, type SecretMasker } from './secret-mask';
import type { BlobStore } from './store/blob-store';

/** Notebooks larger than this are read whole into memory by no one: they are stored as they are. */
export const NOTEBOOK_MASK_MAX_BYTES = 64 * 1024 * 1024;

/** The notebook's JSON with its cells' outputs masked, or undefined when nothing in them changed (or it is no notebook). */
export function maskNotebook(masker: SecretMasker, bytes: Buffer): Buffer | undefined {
  let nb: unknown;
  try {
    nb = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  const cells = (nb as { cells?: unknown } | null)?.cells;
  if (!Array.isArray(cells)) return undefined;
  let changed = false;
  for (const cell of cells as Array<Record<string, unknown>>) {
    if (!cell || typeof cell !== 'object' || !Array.isArray(cell.outputs)) continue;
    const before = JSON.stringify(cell.outputs);
    const masked = masker.maskDeep(cell.outputs);
    if (JSON.stringify(masked) !== before) {
      cell.outputs = masked;
      changed = true;
    }
  }
  // As the notebook runner writes it (nbformat's one-space indent), so a diff stays readable.
  return changed ? Buffer.from(JSON.stringify(nb, null, 1) + '\n') : undefined;
}

async function readAll(blobs: BlobStore, sha: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of await blobs.read(sha)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/**
 * The artifact as it is to be recorded: its path masked, and an executed notebook's outputs
 * masked into a new blob, recorded (`recordUpload`) as uploaded for the job, which the artifact
 * then names instead of the worker's bytes.
 */
export async function maskArtifact(
  masker: SecretMasker,
  a: Artifact,
  blobs: BlobStore,
  recordUpload: (sha: string, size: number) => Promise<void>,
): Promise<Artifact> {
  if (masker.empty) return a;
  const path = maskedArtifactPath(masker, a.path);
  if (!isNotebookEntry(a.path) || a.size > NOTEBOOK_MASK_MAX_BYTES) return { ...a, path };
  const masked = maskNotebook(masker, await readAll(blobs, a.sha256));
  if (!masked) return { ...a, path };
  const sha256 = createHash('sha256').update(masked).digest('hex');
  await blobs.putVerified(sha256, masked);
  await recordUpload(sha256, masked.length);
  return { path, sha256, size: masked.length };
}
