// The per-account Hugging Face cache on a real worker, real python3, under the sandbox: an
// account's jobs share HF_HOME across runs; another account's job sees neither the file nor the
// folder.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { BrokerClient } from '../../src/client/api';
import { hearth, Network, REPO, workspace } from './helpers';

describe('per-account Hugging Face cache (integration)', function () {
  this.timeout(180_000);
  let net: Network;
  let alice: BrokerClient;
  let bob: BrokerClient;

  before(async () => {
    // --sandbox bwrap: the isolation between accounts is the sandbox's (scripts/setup.sh installs it).
    net = await Network.start(['--kill-grace', '2', '--sandbox', 'bwrap', '--hf-cache-max', '1G', '--job-disk', '64M', '--nvidia-smi', join(REPO, 'test/fixtures/nvidia-smi/fake-nvidia-smi')]);
    const admin = net.client();
    alice = net.client((await admin.createAccount('alice')).token);
    bob = net.client((await admin.createAccount('bob')).token);
  });
  after(async () => {
    await net?.stop();
  });

  it('keeps what one job of an account put in HF_HOME for its next job, and shows it to no other account', async () => {
    const put = workspace({
      'put.py': [
        'import os',
        'h = os.environ["HF_HOME"]',
        'd = os.path.join(h, "hub", "models--org--base", "blobs")',
        'os.makedirs(d, exist_ok=True)',
        'open(os.path.join(d, "w0"), "w").write("weights of the base model")',
        'print("HF_HOME", h)',
      ].join('\n'),
    });
    const first = await hearth(['run', join(put, 'put.py')], net.env(alice.token!));
    assert.equal(first.code, 0, first.stderr);
    const aliceHome = /^HF_HOME (.+)$/m.exec(first.stdout)![1]!;

    const get = workspace({
      'get.py': [
        'import os',
        'h = os.environ["HF_HOME"]',
        'print("HF_HOME", h)',
        'p = os.path.join(h, "hub", "models--org--base", "blobs", "w0")',
        'print("found", open(p).read() if os.path.exists(p) else None)',
        `other = ${JSON.stringify(aliceHome)}`,
        'print("other home visible", os.path.exists(os.path.join(other, "hub")) and other != h)',
        'print("siblings", sorted(os.listdir(os.path.dirname(h))) == [os.path.basename(h)])',
      ].join('\n'),
    });
    const second = await hearth(['run', join(get, 'get.py')], net.env(alice.token!));
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, new RegExp(`^HF_HOME ${aliceHome}$`, 'm'), 'the same folder for the same account');
    assert.match(second.stdout, /^found weights of the base model$/m);

    const bobs = await hearth(['run', join(get, 'get.py')], net.env(bob.token!));
    assert.equal(bobs.code, 0, bobs.stderr);
    const bobHome = /^HF_HOME (.+)$/m.exec(bobs.stdout)![1]!;
    assert.notEqual(bobHome, aliceHome);
    assert.match(bobs.stdout, /^found None$/m);
    assert.match(bobs.stdout, /^other home visible False$/m);
    // A job sees its own account's folder and no other in the cache's folder.
    assert.match(bobs.stdout, /^siblings True$/m);
    assert.match(second.stdout, /^siblings True$/m);
  });

  it('counts what a job adds to the cache against its disk limit', async () => {
    const hog = workspace({
      'hog.py': [
        'import os, time',
        'd = os.path.join(os.environ["HF_HOME"], "hub", "models--org--huge", "blobs")',
        'os.makedirs(d, exist_ok=True)',
        'with open(os.path.join(d, "w"), "wb") as f:',
        '    for _ in range(96): f.write(os.urandom(1 << 20))',
        'print("written", flush=True)',
        'time.sleep(60)',
      ].join('\n'),
    });
    const r = await hearth(['run', join(hog, 'hog.py')], net.env(alice.token!));
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr, /disk limit: 64 MiB exceeded \(\d+(\.\d+)? MiB in its folder and the Hugging Face cache\)/);
  });
});
