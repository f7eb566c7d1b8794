import type { Artifact } from '../../shared/protocol';

/** Who may read which blob, what a worker uploaded for a job, and the jobs' artifacts (bytes live in the blob store). */
export interface BlobRefsRepo {
  hasRef(sha: string, accountId: string): Promise<boolean>;
  /** of `hashes`, those the account holds no reference to */
  missingRefs(hashes: string[], accountId: string): Promise<string[]>;
  /** a blob that belongs to a job assigned to one of the account's workers */
  workerMayRead(accountId: string, sha: string): Promise<boolean>;
  record(sha: string, size: number, accountId: string, at: number): Promise<void>;
  /** record for many blobs in one transaction (one commit, not one per small file) */
  recordMany(blobs: readonly { sha256: string; size: number }[], accountId: string, at: number): Promise<void>;
  size(sha: string): Promise<number | undefined>;
  /** records the blob, its reference for the job's account, and that it was uploaded for this job */
  recordJobUpload(jobId: string, accountId: string, sha: string, size: number, at: number): Promise<void>;
  /** the size of a blob uploaded for this job, undefined when it was not */
  uploadedSize(jobId: string, sha: string): Promise<number | undefined>;
  recordArtifact(jobId: string, accountId: string, a: Artifact): Promise<void>;
  artifacts(jobId: string): Promise<Artifact[]>;
}
