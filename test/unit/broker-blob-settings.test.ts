// The broker's --blobs setting, checked once at start: a bad one stops the broker with why.
import assert from 'node:assert/strict';
import { parseS3Url } from '../../src/broker/store/s3-blob-store';

describe('broker: --blobs s3://… setting', () => {
  it('reads bucket, prefix, endpoint, region, path style and URL lifetime', () => {
    assert.deepEqual(parseS3Url('s3://hearth-blobs/team/a?endpoint=http%3A%2F%2F127.0.0.1%3A9000&region=eu-west-1&forcePathStyle=true&expires=60'), {
      bucket: 'hearth-blobs',
      prefix: 'team/a/',
      endpoint: 'http://127.0.0.1:9000',
      region: 'eu-west-1',
      forcePathStyle: true,
      expires: 60,
    });
    assert.deepEqual(parseS3Url('s3://hearth-blobs'), { bucket: 'hearth-blobs', prefix: '', region: 'us-east-1', forcePathStyle: false, expires: 300 });
  });

  it('refuses what would go wrong later, saying what', () => {
    assert.throws(() => parseS3Url('s3://ab'), /bucket name/);
    assert.throws(() => parseS3Url('s3://key:secret@hearth-blobs'), /no credentials in the URL/);
    assert.throws(() => parseS3Url('s3://hearth-blobs?endpoint=nope'), /endpoint/);
    assert.throws(() => parseS3Url('s3://hearth-blobs?forcePathStyle=yes'), /forcePathStyle/);
    assert.throws(() => parseS3Url('s3://hearth-blobs?acl=public'), /unknown setting "acl"/);
    assert.throws(() => parseS3Url('http://hearth-blobs'), /expected folder or s3:/);
  });
});
