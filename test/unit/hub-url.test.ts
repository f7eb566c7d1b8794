// Where `hearth push` sends the renter's write token.
import assert from 'node:assert/strict';
import { hubUrlFrom } from '../../src/client/hub-push';

describe('client: the Hub URL a push uses', () => {
  it('takes --hub-url, else HF_ENDPOINT, else huggingface.co', () => {
    assert.equal(hubUrlFrom(undefined, {}), 'https://huggingface.co');
    assert.equal(hubUrlFrom(undefined, { HF_ENDPOINT: 'https://hub.example.org/' }), 'https://hub.example.org');
    assert.equal(hubUrlFrom('https://mine.example.org', { HF_ENDPOINT: 'https://hub.example.org' }), 'https://mine.example.org');
  });

  it('sends a token over plain http only to this machine', () => {
    assert.equal(hubUrlFrom('http://127.0.0.1:8080', {}), 'http://127.0.0.1:8080');
    assert.equal(hubUrlFrom('http://localhost:8080', {}), 'http://localhost:8080');
    assert.throws(() => hubUrlFrom('http://hub.example.org', {}), /refusing to send a Hub token over plain http to hub\.example\.org; use https \(--hub-url/);
    assert.throws(() => hubUrlFrom(undefined, { HF_ENDPOINT: 'http://mirror.example.org' }), /HF_ENDPOINT is http:\/\/mirror\.example\.org/);
    assert.throws(() => hubUrlFrom('ftp://hub.example.org', {}), /must be an http\(s\) URL/);
    assert.throws(() => hubUrlFrom('not a url', {}), /must be an http\(s\) URL/);
  });
});
