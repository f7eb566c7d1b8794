// Picks the blob store from the broker's `--blobs` setting: `folder` (the default: <data-dir>/blobs)
// or `s3://bucket[/prefix]?endpoint=…&region=…&forcePathStyle=true`.
import { join } from 'node:path';
import { FolderBlobStore, type BlobStore, type UploadLimits } from './blob-store';
import { S3BlobStore, parseS3Url } from './s3-blob-store';

export async function openBlobStore(spec: string, dataDir: string, limits: UploadLimits): Promise<BlobStore & { close?(): void }> {
  if (spec === 'folder' || spec === '') return new FolderBlobStore(join(dataDir, 'blobs'), limits);
  return S3BlobStore.open(parseS3Url(spec), limits);
}
