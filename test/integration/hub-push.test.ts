// `hearth push` end to end: a real broker and worker run a real python3 job, and the CLI pushes its
// artifacts to a STAND-IN Hugging Face Hub on loopback (test/integration/stand-in-hub.ts; the real
// Hub cannot be reached from these machines) through @huggingface/hub, as it would to the real one.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BrokerClient } from '../../src/client/api';
import { hearth, Network, REPO, workspace } from './helpers';
import { StandInHub } from './stand-in-hub';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const TOKEN = 'hf_standInWriteToken0123456789';

describe('hearth push to a stand-in Hugging Face Hub (integration)', function () {
  this.timeout(180_000);
  let net: Network;
  let alice: BrokerClient;
  let hub: StandInHub;
  let jobId: string;

  before(async () => {
    // The recorded nvidia-smi stands in for GPUs this machine lacks: the card names the H100.
    net = await Network.start(['--kill-grace', '2', '--nvidia-smi', join(REPO, 'test/fixtures/nvidia-smi/fake-nvidia-smi')]);
    alice = net.client((await net.client().createAccount('alice')).token);
    // Files of 64 KiB and more take the LFS path here (the Hub's own line is 10 MB).
    hub = await new StandInHub(TOKEN, 64 * 1024).start();
    const ws = workspace({
      'tbwriter.py': readFileSync(join(REPO, 'test/fixtures/py/tbwriter.py')),
      'train.py': [
        'import json, os, random',
        'from tbwriter import SummaryWriter',
        'w = SummaryWriter("runs")',
        'for step in range(10): w.add_scalar("train/loss", 1.0 / (step + 1), step); w.add_scalar("lr", 0.01, step)',
        'w.close()',
        'os.makedirs("outputs", exist_ok=True)',
        'random.seed(7)',
        'open("outputs/model.safetensors", "wb").write(random.randbytes(300_000))',
        'json.dump({"hidden": 8}, open("outputs/config.json", "w"))',
        'print("trained")',
      ].join('\n'),
    });
    const r = await hearth(['run', join(ws, 'train.py')], net.env(alice.token!));
    assert.equal(r.code, 0, r.stderr);
    jobId = r.stderr.split('\n')[0]!;
  });
  after(async () => {
    await net?.stop();
    await hub?.stop();
  });

  it('pushes every artifact byte-identical and a model card, the large file through LFS', async () => {
    const r = await hearth(['push', jobId, '--repo', 'hub-owner/tiny-model', '--hub-url', hub.url], { ...net.env(alice.token!), HF_TOKEN: TOKEN });
    assert.equal(r.code, 0, r.stderr);
    const repo = hub.repos.get('hub-owner/tiny-model');
    assert.ok(repo, 'the repository was created');
    const files = repo.branches.get('main')!;
    const artifacts = await alice.artifacts(jobId);
    assert.deepEqual(artifacts.map((a) => a.path).sort(), ['outputs/config.json', 'outputs/model.safetensors']);
    assert.deepEqual([...files.keys()].sort(), ['README.md', 'outputs/config.json', 'outputs/model.safetensors']);
    for (const a of artifacts) assert.equal(sha(files.get(a.path)!), a.sha256, `${a.path} arrived byte-identical`);
    // The large file went preupload → LFS batch → PUT; the small ones inline in the commit.
    assert.deepEqual([...repo.lfsPaths], ['outputs/model.safetensors']);
    assert.ok(hub.requests.includes('POST /hub-owner/tiny-model.git/info/lfs/objects/batch'), hub.requests.join('\n'));
    assert.ok(hub.requests.some((q) => q.startsWith('PUT /lfs-storage/')));
    assert.ok(hub.requests.includes('POST /api/models/hub-owner/tiny-model/preupload/main'));

    const card = files.get('README.md')!.toString('utf8');
    assert.match(card, /^# tiny-model$/m);
    assert.match(card, /\| Entry script \| `train\.py` \|/);
    assert.match(card, /\| Hardware \| NVIDIA H100 80GB HBM3 \|/);
    assert.match(card, /\| Duration \| \d+ s \|/);
    assert.match(card, /\| train\/loss \| 0\.1 \|/, 'the last loss (step 9: 1/10)');
    assert.match(card, /\| lr \| 0\.01 \|/);
    assert.match(card, /`outputs\/model\.safetensors` \| 293\.0 KiB/);
    // Nothing private: no account, worker, job, broker, path or token.
    for (const word of ['alice', 'test-worker', jobId, net.broker.url, '/tmp', net.root, TOKEN, 'hth_']) assert.ok(!card.includes(word), `the card names ${word}`);
  });

  it('pushes again to an existing repository on another branch, private, with HF_ENDPOINT', async () => {
    const r = await hearth(['push', jobId, '--repo', 'hub-owner/other', '--revision', 'dev', '--private'], { ...net.env(alice.token!), HF_TOKEN: TOKEN, HF_ENDPOINT: hub.url });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(hub.repos.get('hub-owner/other')!.private, true);
    const again = await hearth(['push', jobId, '--repo', 'hub-owner/other', '--revision', 'dev'], { ...net.env(alice.token!), HF_TOKEN: TOKEN, HF_ENDPOINT: hub.url });
    assert.equal(again.code, 0, again.stderr);
    const repo = hub.repos.get('hub-owner/other')!;
    assert.deepEqual([...repo.branches.get('dev')!.keys()].sort(), ['README.md', 'outputs/config.json', 'outputs/model.safetensors']);
    assert.deepEqual(repo.commits.map((c) => c.branch), ['dev', 'dev']);
  });

  it('says clearly when the Hub refuses the token, and when a token is no Hub token', async () => {
    const before = hub.repos.size;
    const r = await hearth(['push', jobId, '--repo', 'hub-owner/nope', '--hub-url', hub.url], { ...net.env(alice.token!), HF_TOKEN: 'hf_revokedOrWrong123456' });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /refused the token \(401: Invalid credentials in Authorization header\)/);
    assert.equal(hub.repos.size, before, 'nothing was created');
    const notHf = await hearth(['push', jobId, '--repo', 'hub-owner/nope', '--hub-url', hub.url], { ...net.env(alice.token!), HF_TOKEN: 'ghp_notahubtoken' });
    assert.ok(notHf.code !== 0 && notHf.code !== null, 'a usage error');
    assert.match(notHf.stderr, /not a Hugging Face token: they start with hf_/);
    const noToken = await hearth(['push', jobId, '--repo', 'hub-owner/nope', '--hub-url', hub.url], { ...net.env(alice.token!), HF_TOKEN: '' });
    assert.ok(noToken.code !== 0 && noToken.code !== null, 'a usage error');
    assert.match(noToken.stderr, /no Hub token: set HF_TOKEN or pass --hub-token-file/);
    const badRepo = await hearth(['push', jobId, '--repo', 'just-a-name', '--hub-url', hub.url], { ...net.env(alice.token!), HF_TOKEN: TOKEN });
    assert.ok(badRepo.code !== 0 && badRepo.code !== null, 'a usage error');
    assert.match(badRepo.stderr, /--repo must be OWNER\/NAME/);
  });
});
