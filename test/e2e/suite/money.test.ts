import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { BrokerClient } from '../../../src/client/api';
import { CommandId } from '../../../src/extension/commands/command-ids';
import type { HearthApi } from '../../../src/extension/main';
import { leasePriceText } from '../../../src/shared/money';
import { isTerminal, type Lease } from '../../../src/shared/protocol';
import { command, hearth, waitFor, workspaceRoot } from './helpers';

type Window = Record<string, unknown>;

/**
 * Answers the extension's prompts as a person would, for the length of `fn`: the test shares the
 * extension's `vscode` API object (both load from the extension's folder), so replacing a
 * `window` function here replaces it for the extension too. Restored afterwards.
 */
async function answering<T>(answers: Partial<Record<'showInformationMessage' | 'showWarningMessage' | 'showQuickPick' | 'showInputBox', (...args: never[]) => unknown>>, fn: () => Promise<T>): Promise<T> {
  const w = vscode.window as unknown as Window;
  const saved = Object.fromEntries(Object.keys(answers).map((k) => [k, w[k]]));
  Object.assign(w, answers);
  try {
    return await fn();
  } finally {
    Object.assign(w, saved);
  }
}

export function defineMoneyTests(): void {
  describe('money: prices in prompts, a run\'s own lease, release confirmation', () => {
    let api: HearthApi;
    let client: BrokerClient;

    before(async () => {
      api = await hearth();
      client = (await api.client())!;
      // Run Current File offers to lease only when no lease is held.
      for (const l of await client.leases()) if (l.status === 'active') await client.releaseLease(l.id);
      await waitFor('an offer with a free device', async () => (await api.refresh()).offers.find((o) => o.online && o.free > 0));
    });

    it('Run Current File with no lease: the hours box shows the price, and the lease ends with the run', async () => {
      const offer = api.snapshot().offers.find((o) => o.online && o.free > 0)!;
      const said: string[] = [];
      let priceLine: unknown;
      const script = vscode.Uri.joinPath(workspaceRoot(), 'train.py');
      const id = await answering(
        {
          showInformationMessage: ((message: string, ...items: string[]) => {
            said.push(message);
            return Promise.resolve(message.includes('you hold no GPU lease') ? items.find((i) => i === 'Lease GPU…') : undefined);
          }) as never,
          showQuickPick: (async (items: readonly { offer?: { workerId: string } }[] | Promise<readonly { offer?: { workerId: string } }[]>) =>
            (await items).find((i) => i.offer?.workerId === offer.workerId)) as never,
          showInputBox: (async (o: vscode.InputBoxOptions) => {
            priceLine = await o.validateInput?.('2');
            return '2';
          }) as never,
        },
        () => command<string | undefined>(api, CommandId.runCurrentFile, script, { env: { STEPS: '2', STEP_SECONDS: '0.01' }, noPanel: true }),
      );
      assert.ok(id, `a job; the extension said: ${said.join(' | ')}`);
      // The format itself is pinned by test/unit/money.test.ts.
      const price = leasePriceText(offer, 2);
      assert.deepEqual(priceLine, { message: price, severity: vscode.InputBoxValidationSeverity.Info });
      assert.ok(said.some((m) => m.startsWith('Hearth: leased lease_') && m.includes(price)), said.join(' | '));
      const job = await waitFor('the run to end', async () => {
        const j = await client.job(id);
        return isTerminal(j.status) ? j : undefined;
      }, 180_000);
      assert.equal(job.status, 'succeeded', job.reason ?? '');
      const lease = await waitFor('its lease to be released', async () => {
        const l = await client.lease(job.leaseId);
        return l.status === 'active' ? undefined : l;
      });
      assert.equal(lease.status, 'released', 'a lease taken for the run ends with it');
    });

    it('Release asks first when a job runs on the lease, naming it; No keeps the lease', async () => {
      const offer = (await api.refresh()).offers.find((o) => o.online && o.free > 0)!;
      const lease = (await command<Lease | undefined>(api, CommandId.leaseGpu, { workerId: offer.workerId, gpuModel: offer.gpuModel, count: 1, hours: 1 }))!;
      const script = vscode.Uri.joinPath(workspaceRoot(), 'train.py');
      const id = (await command<string | undefined>(api, CommandId.runCurrentFile, script, { leaseId: lease.id, env: { STEPS: '100000', STEP_SECONDS: '0.05' }, noPanel: true }))!;
      await waitFor('the job to run', async () => ((await client.job(id)).status === 'running' ? true : undefined));
      await api.refresh();
      const asked: { message: string; modal: boolean }[] = [];
      const ask = (answer: string | undefined) =>
        (async (message: string, opts: vscode.MessageOptions) => {
          asked.push({ message, modal: !!opts?.modal });
          return answer;
        }) as never;
      const kept = await answering({ showWarningMessage: ask(undefined) }, () => command<Lease | undefined>(api, CommandId.releaseLease, lease.id));
      assert.equal(kept, undefined);
      assert.equal((await client.lease(lease.id)).status, 'active', 'dismissing the warning keeps the lease');
      assert.equal(asked.length, 1);
      assert.ok(asked[0]!.modal, 'a modal warning');
      assert.match(asked[0]!.message, new RegExp(`^Hearth: train\\.py \\(${id}\\) is running on .* \\(${lease.id}\\)\\. Releasing the lease stops it`));
      const released = await answering({ showWarningMessage: ask('Release') }, () => command<Lease | undefined>(api, CommandId.releaseLease, lease.id));
      assert.equal(released?.status, 'released');
      await waitFor('the job to stop', async () => (isTerminal((await client.job(id)).status) ? true : undefined));
    });
  });
}
