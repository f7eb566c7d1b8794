// The one way a run is submitted, by the CLI and by the extension alike: upload the workspace
// (only the blobs the broker lacks), then submit the job on a lease. A notebook entry runs as a
// notebook (every cell on a fresh kernel; the executed notebook comes back at its path).
import type { Job } from '../shared/protocol';
import type { BrokerClient } from './api';
import { uploadWorkspace, type UploadProgress, type UploadStats } from './workspace';

/** Files brought back when the person names none: weights and checkpoints, and outputs/. */
export const DEFAULT_OUTPUTS: readonly string[] = ['**/*.pt', '**/*.pth', '**/*.safetensors', '**/*.ckpt', 'outputs/**'];

export interface RunRequest {
  /** the folder uploaded as the job's workspace */
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
  onProgress?: (p: UploadProgress) => void;
  signal?: AbortSignal;
}

export interface SubmittedRun {
  job: Job;
  files: number;
  uploadedBlobs: number;
  uploadedBytes: number;
  /** files and bytes in the workspace, and how many of them were sent now */
  upload: UploadStats;
}

export async function submitRun(client: BrokerClient, r: RunRequest): Promise<SubmittedRun> {
  const manifest = await uploadWorkspace(client, r.root, { onProgress: r.onProgress, signal: r.signal });
  r.signal?.throwIfAborted();
  const job = await client.submitJob({
    leaseId: r.leaseId,
    entry: r.entry,
    args: r.args ?? [],
    env: r.env ?? {},
    outputs: [...(r.outputs ?? DEFAULT_OUTPUTS)],
    logdir: r.logdir ?? 'runs',
    releaseLease: r.releaseLease ?? false,
    manifest: { files: manifest.files },
  });
  return { job, files: manifest.files.length, uploadedBlobs: manifest.uploadedBlobs, uploadedBytes: manifest.uploadedBytes, upload: manifest.stats };
}
