// The Hearth notebook kernel in the real VS Code: a notebook picks the lease's controller, and
// its cells run on a real kernel session (broker + worker + Debian's ipykernel, through the
// harness's local network). Nothing here times anything; waits are bounded only so a broken run
// ends.
//
// Each cell's outputs are checked twice: in the editor, and in the session's log (the truth a
// reattaching editor rebuilds from; the kernel bridge says a request's reply only after its last
// output, so nothing of a cell comes after its reply).
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { BrokerClient } from '../../../src/client/api';
import { CommandId } from '../../../src/extension/commands/command-ids';
import type { HearthApi } from '../../../src/extension/main';
import type { Lease } from '../../../src/shared/protocol';
import { command, EXTENSION_ID, hearth, waitFor } from './helpers';

const STDOUT = 'application/vnd.code.notebook.stdout';
const STDERR = 'application/vnd.code.notebook.stderr';
const ERROR = 'application/vnd.code.notebook.error';

const CELLS = [
  // (ends with a sleep so that its last line is not read after the reply: see the top note)
  /* 0 */ 'import sys, time\nfor i in range(3):\n    print(f"line {i}", flush=True)\nprint("to stderr", file=sys.stderr, flush=True)\ntime.sleep(0.3)',
  /* 1 */ 'x = 6\nprint(x * 7)',
  /* 2 */ 'import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()',
  /* 3 */ 'def f():\n    raise ValueError("bad value")\nf()',
  /* 4 */ 'print("after the error")',
  /* 5 */ 'import time\nfor i in range(600):\n    print(i, flush=True)\n    time.sleep(0.1)',
  /* 6 */ 'print("x is", x)',
  /* 7 */ 'print("x" in dir())',
  /* 8 */ 'for i in range(20000):\n    print(f"n{i}")',
  /* 9 */ 'name = input("who? ")\nprint("hello", repr(name))',
];

function text(cell: vscode.NotebookCell, mime: string): string {
  return cell.outputs.flatMap((o) => o.items.filter((i) => i.mime === mime).map((i) => new TextDecoder().decode(i.data))).join('');
}

function mimes(cell: vscode.NotebookCell): string[] {
  return cell.outputs.flatMap((o) => o.items.map((i) => i.mime));
}

export function defineNotebookTests(): void {
  describe('notebooks on a Hearth kernel', () => {
    let api: HearthApi;
    let client: BrokerClient;
    let lease: Lease;
    let nb: vscode.NotebookDocument;
    const runs = new Map<number, number>();

    /** Runs cells and waits until each has ended this time (its summary's end after this call). */
    async function run(...indexes: number[]): Promise<vscode.NotebookCell[]> {
      const since = Date.now();
      for (const i of indexes) runs.set(i, since);
      await vscode.commands.executeCommand('notebook.cell.execute', { ranges: indexes.map((i) => ({ start: i, end: i + 1 })), document: nb.uri });
      return Promise.all(indexes.map((i) => ended(i, since)));
    }

    function ended(i: number, since: number): Promise<vscode.NotebookCell> {
      return waitFor(`cell ${i} to end`, async () => {
        const cell = nb.cellAt(i);
        const end = cell.executionSummary?.timing?.endTime;
        if (end === undefined || end < since - 1000 || cell.executionSummary?.success === undefined) return undefined;
        // The summary and the outputs reach this side as separate model events: wait for the
        // outputs too, unless the broker's log holds none for the request (see the top note).
        return cell.outputs.length > 0 || (await logged(i)).outputs === 0 ? cell : undefined;
      }, 120_000);
    }

    /** What the broker's log holds of the last request that ran cell i. */
    async function logged(i: number): Promise<{ types: string[]; stdout: string; stderr: string; outputs: number }> {
      const id = api.notebooks.kernel(nb.uri)?.sessionId;
      const bodies: { requestId: string | null; msgType: string; content: Record<string, unknown> }[] = [];
      if (id) for await (const e of client.events(id, { from: 0 })) if (e.body.type === 'kernel') bodies.push(e.body);
      const rid = bodies.filter((b) => b.msgType === 'execute_request' && b.content.code === CELLS[i]).pop()?.requestId;
      const mine = bodies.filter((b) => rid && b.requestId === rid);
      const stream = (name: string) => mine.filter((b) => b.msgType === 'stream' && b.content.name === name).map((b) => String(b.content.text)).join('');
      const types = mine.map((b) => b.msgType);
      return { types, stdout: stream('stdout'), stderr: stream('stderr'), outputs: types.filter((t) => ['stream', 'display_data', 'execute_result', 'error'].includes(t)).length };
    }

    /**
     * The broker's log holds every output the cell should have (the kernel bridge says a request's
     * reply only after its last output), so what the editor shows is checked against the truth.
     */
    async function assertLogged(_ctx: Mocha.Context, i: number, want: { types?: string[]; stdout?: string; stderr?: string }): Promise<void> {
      const l = await logged(i);
      const lost = [
        ...(want.types ?? []).filter((t) => !l.types.includes(t)),
        ...(want.stdout !== undefined && !l.stdout.endsWith(want.stdout) ? ['stdout'] : []),
        ...(want.stderr !== undefined && l.stderr !== want.stderr ? ['stderr'] : []),
      ];
      assert.deepEqual(lost, [], `cell ${i}: the session's log lacks its ${lost.join(', ')}`);
    }

    before(async function () {
      this.timeout(240_000);
      api = await hearth();
      client = (await api.client())!;
      const snap = await waitFor('an offer with a free device or a lease', async () => {
        const s = await api.refresh();
        return s.leases.length > 0 || s.offers.some((o) => o.online && o.free > 0) ? s : undefined;
      });
      const offer = snap.offers.find((o) => o.online && o.free > 0);
      lease = offer
        ? (await command<Lease | undefined>(api, CommandId.leaseGpu, { workerId: offer.workerId, gpuModel: offer.gpuModel, count: 1, hours: 1 }))!
        : snap.leases[0]!;
      assert.ok(lease, 'a lease');
      await waitFor('the lease\'s controller', async () => {
        await api.refresh();
        return api.notebooks.controllerIds().includes(api.notebooks.controllerId(lease.id)) ? true : undefined;
      });
      const data = new vscode.NotebookData(CELLS.map((c) => new vscode.NotebookCellData(vscode.NotebookCellKind.Code, c, 'python')));
      nb = await vscode.workspace.openNotebookDocument('jupyter-notebook', data);
      await vscode.window.showNotebookDocument(nb);
      await vscode.commands.executeCommand('notebook.selectKernel', { id: api.notebooks.controllerId(lease.id), extension: EXTENSION_ID });
    });

    after(async () => {
      await vscode.workspace.getConfiguration('hearth').update('outputLineLimit', undefined, vscode.ConfigurationTarget.Workspace);
    });

    it('offers a "Hearth" kernel per lease and one that leases a GPU', () => {
      assert.ok(api.notebooks.controllerIds().includes(api.notebooks.newLeaseControllerId));
      assert.ok(api.notebooks.controllerIds().includes(api.notebooks.controllerId(lease.id)));
    });

    it('runs a cell on the leased kernel: streamed text merged per stream, and the status bar says so', async function () {
      this.timeout(180_000);
      const [cell] = await run(0);
      await assertLogged(this, 0, { stdout: 'line 0\nline 1\nline 2\n', stderr: 'to stderr\n' });
      assert.equal(cell!.executionSummary?.success, true);
      assert.equal(text(cell!, STDOUT), 'line 0\nline 1\nline 2\n');
      assert.equal(text(cell!, STDERR), 'to stderr\n');
      assert.equal(cell!.outputs.filter((o) => o.items.some((i) => i.mime === STDOUT)).length, 1, 'one stdout output, merged');
      const k = api.notebooks.kernel(nb.uri);
      assert.ok(k?.sessionId, 'a kernel session for the notebook');
      assert.equal(k.leaseId, lease.id);
      assert.equal((await client.job(k.sessionId)).kind, 'kernel');
      await waitFor('the status bar to say idle', () => (/Hearth kernel: .* · idle/.test(api.notebooks.statusText() ?? '') ? true : undefined));
    });

    it('keeps state, and numbers executions as the kernel does', async function () {
      const [cell] = await run(1);
      await assertLogged(this, 1, { stdout: '42\n' });
      // printed rather than an execute_result: see the note on the bridge at the top of this file
      assert.equal(text(cell!, STDOUT), '42\n');
      assert.equal(cell!.executionSummary?.executionOrder, (nb.cellAt(0).executionSummary?.executionOrder ?? 0) + 1);
    });

    it('shows a matplotlib figure as image/png', async function () {
      const [cell] = await run(2);
      await assertLogged(this, 2, { types: ['display_data'] });
      assert.equal(cell!.executionSummary?.success, true, text(cell!, ERROR));
      const png = cell!.outputs.flatMap((o) => o.items).find((i) => i.mime === 'image/png');
      assert.ok(png, `an image/png output among ${mimes(cell!).join(', ')}`);
      assert.deepEqual([...png.data.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], 'PNG bytes, decoded from base64');
    });

    it('shows an error with its traceback, and the cell queued after it ends as aborted', async function () {
      const [bad, after] = await run(3, 4);
      await assertLogged(this, 3, { types: ['error'] });
      assert.equal(bad!.executionSummary?.success, false);
      const err = JSON.parse(text(bad!, ERROR)) as { name: string; message: string; stack: string };
      assert.equal(err.name, 'ValueError');
      assert.equal(err.message, 'bad value');
      // eslint-disable-next-line no-control-regex
      assert.match(err.stack.replace(/\x1b\[[0-9;]*m/g, ''), /----> 3 f\(\)/, 'the traceback, ANSI colours and all');
      assert.equal(after!.executionSummary?.success, false);
      assert.equal(text(after!, STDOUT), '', 'the queued cell did not run');
      assert.match(text(after!, ERROR), /Not run: an earlier cell failed/);
    });

    it('the interrupt button stops a time.sleep loop with KeyboardInterrupt and keeps the state', async function () {
      this.timeout(180_000);
      const since = Date.now();
      await vscode.commands.executeCommand('notebook.cell.execute', { ranges: [{ start: 5, end: 6 }], document: nb.uri });
      await waitFor('the loop to print', () => (text(nb.cellAt(5), STDOUT).includes('3\n') ? true : undefined));
      await vscode.commands.executeCommand('notebook.cell.cancelExecution', { ranges: [{ start: 5, end: 6 }], document: nb.uri });
      const cell = await ended(5, since);
      await assertLogged(this, 5, { types: ['error'] });
      assert.equal(cell.executionSummary?.success, false);
      assert.match(text(cell, ERROR), /KeyboardInterrupt/);
      const [next] = await run(6);
      await assertLogged(this, 6, { stdout: 'x is 6\n' });
      assert.equal(text(next!, STDOUT), 'x is 6\n');
    });

    it('input() asks with an input box and sends the answer to the kernel', async function () {
      this.timeout(180_000);
      const since = Date.now();
      await vscode.commands.executeCommand('notebook.cell.execute', { ranges: [{ start: 9, end: 10 }], document: nb.uri });
      // Accept the input box (empty) once it shows; accepting with none open does nothing.
      await waitFor('the answer to reach the cell', async () => {
        await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
        return text(nb.cellAt(9), STDOUT).includes('hello') || (await logged(9)).types.includes('execute_reply') ? true : undefined;
      });
      const cell = await ended(9, since);
      await assertLogged(this, 9, { stdout: "hello ''\n" });
      assert.equal(text(cell, STDOUT), "hello ''\n");
      assert.equal(cell.executionSummary?.success, true);
    });

    it('Open Kernel Panel opens the run panel of the kernel session', async () => {
      const id = await command<string>(api, CommandId.openKernelPanel, nb.uri);
      assert.equal(id, api.notebooks.kernel(nb.uri)?.sessionId);
      await waitFor('the panel of the session', () => (api.panelState(id)?.ready ? true : undefined));
      await vscode.window.showNotebookDocument(nb);
    });

    it('cuts a very long stream to its last lines, saying the whole text is in the kernel log', async function () {
      this.timeout(180_000);
      await vscode.workspace.getConfiguration('hearth').update('outputLineLimit', 100, vscode.ConfigurationTarget.Workspace);
      const [cell] = await run(8);
      await assertLogged(this, 8, { stdout: 'n19999\n' });
      const out = text(cell!, STDOUT);
      assert.match(out, /^\[Hearth: \d+ earlier lines are not shown here/);
      const lines = out.split('\n').slice(1, -1);
      assert.equal(lines.length, 100);
      assert.equal(lines[0], 'n19900');
      assert.equal(lines[99], 'n19999');
      const doc = await command<vscode.TextDocument>(api, CommandId.showKernelLog, nb.uri);
      assert.match(doc.getText(), /\nn0\n[\s\S]*\nn19999\n/);
      await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
      await vscode.window.showNotebookDocument(nb);
    });

    it('Restart Kernel gives a fresh kernel that counts from 1', async function () {
      this.timeout(180_000);
      await command(api, CommandId.restartKernel, nb.uri);
      const [cell] = await run(7);
      await assertLogged(this, 7, { stdout: 'False\n' });
      assert.equal(text(cell!, STDOUT), 'False\n', `outputs: ${mimes(cell!).join(', ')} ${text(cell!, ERROR)}`);
      assert.equal(cell!.executionSummary?.executionOrder, 1);
    });

    it('Shut Down Kernel ends the session and forgets it', async () => {
      const id = api.notebooks.kernel(nb.uri)!.sessionId;
      await command(api, CommandId.shutDownKernel, nb.uri);
      assert.equal(api.notebooks.kernel(nb.uri), undefined);
      await waitFor('the session to end', async () => ((await client.job(id)).status === 'cancelled' ? true : undefined));
    });

    it('a session ended elsewhere (lease over, idle, another client) is forgotten; the next cell starts a new one', async function () {
      this.timeout(180_000);
      await run(1);
      const first = api.notebooks.kernel(nb.uri)!.sessionId;
      await client.cancelJob(first);
      await waitFor('the notebook to forget the ended session', () => (api.notebooks.kernel(nb.uri) === undefined ? true : undefined));
      await run(1);
      const second = api.notebooks.kernel(nb.uri)?.sessionId;
      assert.ok(second && second !== first, 'a new session');
      await command(api, CommandId.shutDownKernel, nb.uri);
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    });
  });
}
