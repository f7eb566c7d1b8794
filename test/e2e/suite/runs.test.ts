import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import * as vscode from 'vscode';
import type { BrokerClient } from '../../../src/client/api';
import { CommandId } from '../../../src/extension/commands/command-ids';
import type { HearthApi } from '../../../src/extension/main';
import type { ArtifactItem, JobItem } from '../../../src/extension/views/run-tree';
import { seriesKey } from '../../../src/shared/panel-protocol';
import { kernelText } from '../../../src/shared/kernel-text';
import { isTerminal, type Job, type Lease } from '../../../src/shared/protocol';
import { command, hearth, waitFor, workspaceRoot } from './helpers';

/** What test/e2e/workspace/train.py writes to outputs/model.pt. */
const EXPECTED_WEIGHTS = Buffer.concat([
  Buffer.from('HEARTH-E2E-WEIGHTS\n'),
  ...Array.from({ length: 64 }, () => Buffer.from(Array.from({ length: 256 }, (_, i) => i))),
]);
const STEPS = 30;

async function logOf(client: BrokerClient, jobId: string): Promise<string> {
  let text = '';
  for await (const ev of client.events(jobId, { from: 0 })) {
    if (ev.body.type === 'log') text += ev.body.data;
    // a notebook run's cell outputs, as the CLI and the run panel show them
    else if (ev.body.type === 'kernel') text += kernelText(ev.body)?.data ?? '';
  }
  return text;
}

async function terminal(client: BrokerClient, jobId: string): Promise<Job> {
  return waitFor(`job ${jobId} to end`, async () => {
    const j = await client.job(jobId);
    return isTerminal(j.status) ? j : undefined;
  }, 180_000);
}

export function defineRunTests(): void {
  describe('leases and runs', () => {
    let api: HearthApi;
    let client: BrokerClient;
    let lease: Lease;
    let jobId: string;

    before(async () => {
      api = await hearth();
      client = (await api.client())!;
      await waitFor('an offer with a free device', async () => (await api.refresh()).offers.find((o) => o.online && o.free > 0));
    });

    it('Lease GPU… leases the offer and the Leases view shows it', async () => {
      const offer = api.snapshot().offers.find((o) => o.online && o.free > 0)!;
      const l = await command<Lease | undefined>(api, CommandId.leaseGpu, { workerId: offer.workerId, gpuModel: offer.gpuModel, count: 1, hours: 1 });
      assert.ok(l, 'a lease');
      lease = l;
      assert.equal(lease.status, 'active');
      assert.equal(lease.workerId, offer.workerId);
      await waitFor('the lease in the Leases view', async () => {
        await api.refresh();
        return api.leaseTree.getChildren().find((i) => i.lease.id === lease.id);
      });
      const item = api.leaseTree.getChildren().find((i) => i.lease.id === lease.id)!;
      assert.match(String(item.description), /left · [\d.]+ cr so far · [\d.]+ cr\/h · /);
      // the side bar is narrow: whatever the row holds is in its tooltip too
      const tip = (item.tooltip as vscode.MarkdownString).value;
      for (const part of String(item.description).split(' · ')) assert.ok(tip.includes(part), `"${part}" in the tooltip: ${tip}`);
    });

    it('Renew Lease extends the lease', async () => {
      const renewed = await command<Lease | undefined>(api, CommandId.renewLease, lease.id, 0.5);
      assert.ok(renewed);
      assert.equal(renewed.expiresAt - lease.expiresAt, 1_800_000, 'half an hour later than before');
      lease = renewed;
    });

    it('Run Current File runs train.py; its log and scalars reach the run panel', async () => {
      const script = vscode.Uri.joinPath(workspaceRoot(), 'train.py');
      await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(script));
      const id = await command<string | undefined>(api, CommandId.runCurrentFile, undefined, {
        leaseId: lease.id,
        env: { STEPS: String(STEPS), STEP_SECONDS: '0.05' },
      });
      assert.ok(id, 'a job id');
      jobId = id;
      const job = await terminal(client, jobId);
      assert.equal(job.status, 'succeeded', `job ended ${job.status}: ${job.reason ?? ''}`);
      assert.equal(job.entry, 'train.py');

      const log = await logOf(client, jobId);
      assert.match(log, /Hearth e2e training/);
      assert.match(log, /saved outputs\/model\.pt/);

      // The panel draws what the broker holds: every log byte and every point of every series.
      const logBytes = Buffer.byteLength(log, 'utf8');
      const drawn = await waitFor('the run panel to draw the whole run', () => {
        const s = api.panelState(jobId);
        return s && s.logBytes >= logBytes && (s.series[seriesKey('.', 'loss/train')] ?? 0) >= STEPS ? s : undefined;
      });
      assert.equal(drawn.logBytes, logBytes);
      for (const tag of ['loss/train', 'loss/val', 'accuracy']) assert.equal(drawn.series[seriesKey('.', tag)], STEPS, tag);
    });

    it('the Runs view shows the run with its status and artifacts', async () => {
      await api.refresh();
      const items = await api.runTree.getChildren();
      const item = items.find((i): i is JobItem => i.kind === 'job' && i.job.id === jobId);
      assert.ok(item, 'the job in the Runs view');
      assert.equal(item.contextValue, 'job.succeeded.done');
      assert.equal((item.iconPath as vscode.ThemeIcon).id, 'pass');
      const children = await api.runTree.getChildren(item);
      const art = children.find((c): c is ArtifactItem => c.kind === 'artifact' && c.artifact.path === 'outputs/model.pt');
      assert.ok(art, 'outputs/model.pt among the artifacts');
      assert.equal(art.artifact.size, EXPECTED_WEIGHTS.length);
    });

    it('Show Run Log opens the run\'s output as a document', async () => {
      const doc = await command<vscode.TextDocument | undefined>(api, CommandId.showRunLog, jobId);
      assert.ok(doc);
      const text = doc.getText();
      assert.match(text, /Hearth e2e training/);
      assert.match(text, new RegExp(`${STEPS}/${STEPS} loss=`), 'the last rewrite of the progress line');
      assert.ok(!text.includes('\x1b['), 'no escape sequences');
      await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
    });

    it('Pull Weights writes byte-identical files into .hearth/runs/<job>/', async () => {
      const paths = await command<string[] | undefined>(api, CommandId.pullWeights, jobId, { reveal: false });
      assert.ok(paths && paths.length > 0);
      const dest = vscode.Uri.joinPath(workspaceRoot(), '.hearth', 'runs', jobId, 'outputs', 'model.pt').fsPath;
      assert.ok(paths.includes(dest), `${dest} among ${paths.join(', ')}`);
      const got = await readFile(dest);
      assert.ok(got.equals(EXPECTED_WEIGHTS), 'the pulled model.pt equals what train.py wrote');
      const arts = await client.artifacts(jobId);
      for (const a of arts) {
        const bytes = await readFile(vscode.Uri.joinPath(workspaceRoot(), '.hearth', 'runs', jobId, ...a.path.split('/')).fsPath);
        assert.equal(createHash('sha256').update(bytes).digest('hex'), a.sha256, a.path);
      }
    });

    it('Cancel Run stops a running script', async () => {
      const script = vscode.Uri.joinPath(workspaceRoot(), 'train.py');
      const id = await command<string | undefined>(api, CommandId.runCurrentFile, script, {
        leaseId: lease.id,
        env: { STEPS: '100000', STEP_SECONDS: '0.05' },
        noPanel: true,
      });
      assert.ok(id);
      await waitFor('the long run to print its first line', async () => ((await logOf(client, id)).includes('Hearth e2e training') ? true : undefined));
      const j = await command<Job | undefined>(api, CommandId.cancelRun, id);
      assert.ok(j);
      const end = await terminal(client, id);
      assert.equal(end.status, 'cancelled');
      assert.doesNotMatch(await logOf(client, id), /saved outputs\/model\.pt/);
      await api.refresh();
      const item = (await api.runTree.getChildren()).find((i): i is JobItem => i.kind === 'job' && i.job.id === id);
      assert.equal(item?.contextValue, 'job.cancelled.done');
    });

    it('Run Current File runs a notebook cell by cell on a kernel and brings the executed notebook back', async () => {
      const nb = vscode.Uri.joinPath(workspaceRoot(), 'hello.ipynb');
      const cell = (source: string[]) => ({ cell_type: 'code', metadata: {}, execution_count: null, outputs: [], source });
      await writeFile(
        nb.fsPath,
        JSON.stringify({
          nbformat: 4,
          nbformat_minor: 5,
          metadata: {},
          cells: [
            cell(['%matplotlib inline\n', 'x = 6 * 7\n']),
            { cell_type: 'markdown', metadata: {}, source: ['# not code'] },
            cell(['print("notebook says", x)\n']),
          ],
        }),
      );
      // Open in the editor, the notebook shows each cell's outputs as the run produces them.
      const doc = await vscode.workspace.openNotebookDocument(nb);
      await vscode.window.showNotebookDocument(doc);
      const id = await command<string | undefined>(api, CommandId.runCurrentFile, nb, { leaseId: lease.id, noPanel: true });
      assert.ok(id);
      const end = await terminal(client, id);
      assert.equal(end.status, 'succeeded', end.reason ?? '');
      assert.equal(end.entry, 'hello.ipynb');
      const printed = () => doc.cellAt(2).outputs.flatMap((o) => o.items.map((i) => new TextDecoder().decode(i.data))).join('');
      await waitFor('the run\'s outputs in the open notebook', () => (printed().includes('notebook says 42') ? true : undefined), 30_000);
      assert.equal(doc.cellAt(2).executionSummary?.executionOrder, 2);
      await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
      assert.match(await logOf(client, id), /notebook says 42/);
      assert.ok((await client.artifacts(id)).some((a) => a.path === 'hello.ipynb'), 'the executed notebook is an artifact');
    });

    it('hearth.autoPull pulls the weights when a run ends', async () => {
      const settings = vscode.workspace.getConfiguration('hearth');
      await settings.update('autoPull', true, vscode.ConfigurationTarget.Global);
      try {
        const script = vscode.Uri.joinPath(workspaceRoot(), 'train.py');
        const id = await command<string | undefined>(api, CommandId.runCurrentFile, script, {
          leaseId: lease.id,
          env: { STEPS: '3', STEP_SECONDS: '0.01' },
          noPanel: true,
        });
        assert.ok(id);
        const dest = vscode.Uri.joinPath(workspaceRoot(), '.hearth', 'runs', id, 'outputs', 'model.pt').fsPath;
        // Pulled files take their name only once whole and verified, so existence means done.
        const got = await waitFor('the weights to be pulled without asking', () => readFile(dest));
        assert.ok(got.equals(EXPECTED_WEIGHTS));
      } finally {
        await settings.update('autoPull', undefined, vscode.ConfigurationTarget.Global);
      }
    });

    it('Release Lease ends the lease and the Leases view drops it', async () => {
      const released = await command<Lease | undefined>(api, CommandId.releaseLease, lease.id);
      assert.equal(released?.status, 'released');
      await api.refresh();
      assert.equal(api.leaseTree.getChildren().find((i) => i.lease.id === lease.id), undefined);
    });

    it('the status bar shows a lease about to end, and warns once', async () => {
      const offer = (await api.refresh()).offers.find((o) => o.online && o.free > 0);
      assert.ok(offer, 'a free device again after the release');
      // three minutes: inside the five-minute warning window from the start
      const short = await command<Lease | undefined>(api, CommandId.leaseGpu, { workerId: offer.workerId, gpuModel: offer.gpuModel, count: 1, hours: 0.05 });
      assert.ok(short);
      try {
        await api.refresh();
        const bar = await waitFor('the status bar to show the lease', () => {
          const b = api.statusBar();
          return b.text && b.warnedLeaseIds.includes(short.id) ? b : undefined;
        });
        assert.match(bar.text!, new RegExp(`${offer.gpuModel.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} · [23]m \\d\\ds left · [\\d.]+ cr`));
      } finally {
        await command(api, CommandId.releaseLease, short.id);
      }
      await api.refresh();
      assert.equal(api.statusBar().text, undefined, 'hidden once no lease is held');
    });
  });
}
