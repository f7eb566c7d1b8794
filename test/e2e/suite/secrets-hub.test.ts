// Hearth: Set Secret… and Push to Hugging Face Hub… in the extension host, against the local
// network and a STAND-IN Hugging Face Hub on loopback (test/integration/stand-in-hub.ts; the real
// Hub cannot be reached from these machines).
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrokerClient } from '../../../src/client/api';
import { submitRun } from '../../../src/client/submit-run';
import { CommandId } from '../../../src/extension/commands/command-ids';
import type { HearthApi } from '../../../src/extension/main';
import { isTerminal } from '../../../src/shared/protocol';
import { StandInHub } from '../../integration/stand-in-hub';
import { command, hearth, waitFor } from './helpers';

const TOKEN = 'hf_standInE2eToken0123456789';

export function defineSecretHubTests(): void {
  describe('secrets and the Hugging Face Hub', () => {
    let api: HearthApi;
    let client: BrokerClient;
    let hub: StandInHub;

    before(async () => {
      api = await hearth();
      client = (await api.client())!;
      hub = await new StandInHub(TOKEN, 64 * 1024).start();
      process.env.HF_ENDPOINT = hub.url;
    });
    after(async () => {
      delete process.env.HF_ENDPOINT;
      await hub?.stop();
    });

    it('Set Secret… stores a secret that the broker lists by name only', async () => {
      const value = `e2e-${Date.now()}-secret-value`;
      assert.equal(await command(api, CommandId.setSecret, { name: 'E2E_SECRET', value }), 'E2E_SECRET');
      const listed = await client.secrets();
      assert.ok(listed.some((s) => s.name === 'E2E_SECRET'));
      assert.ok(!JSON.stringify(listed).includes(value));
    });

    it('Push to Hugging Face Hub… pushes a run\'s artifacts and a model card', async () => {
      const root = mkdtempSync(join(tmpdir(), 'hearth-e2e-push-'));
      writeFileSync(join(root, 'make.py'), 'import os\nos.makedirs("outputs", exist_ok=True)\nopen("outputs/weights.bin", "wb").write(bytes(range(256)) * 512)\n');
      const lease = await client.createLease({ count: 1, hours: 1 });
      const { job } = await submitRun(client, { root, entry: 'make.py', leaseId: lease.id, releaseLease: true });
      const done = await waitFor('the run to end', async () => {
        const j = await client.job(job.id);
        return isTerminal(j.status) ? j : undefined;
      }, 180_000);
      assert.equal(done.status, 'succeeded');
      const url = await command<string>(api, CommandId.pushToHub, { jobId: job.id, repo: 'e2e-owner/model', private: true, hubToken: TOKEN });
      assert.match(url, /\/e2e-owner\/model\/commit\//);
      const repo = hub.repos.get('e2e-owner/model')!;
      assert.equal(repo.private, true);
      const files = repo.branches.get('main')!;
      const [a] = await client.artifacts(job.id);
      assert.equal(createHash('sha256').update(files.get('outputs/weights.bin')!).digest('hex'), a!.sha256);
      assert.deepEqual([...repo.lfsPaths], ['outputs/weights.bin']);
      assert.match(files.get('README.md')!.toString(), /\| Entry script \| `make\.py` \|/);
    });
  });
}
