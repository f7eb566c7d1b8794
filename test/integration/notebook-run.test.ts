// `hearth run NOTEBOOK.ipynb`: every cell in order on a fresh IPython kernel on the worker (real
// ipykernel through jupyter_client, Debian's python3-ipykernel), each cell's outputs printed while
// it runs, and the executed notebook (valid nbformat 4) pulled back at its own path.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hearth, Network, waitFor, workspace } from './helpers';

interface NbOutput {
  output_type: string;
  name?: string;
  text?: string[];
  data?: Record<string, unknown>;
  execution_count?: number;
  ename?: string;
}
interface NbCell {
  cell_type: string;
  execution_count?: number | null;
  outputs?: NbOutput[];
}

// eslint-disable-next-line no-control-regex
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');
const code = (source: string) => ({ cell_type: 'code', metadata: {}, execution_count: null, outputs: [], source: source.split(/(?<=\n)/) });
const notebook = (cells: object[]) => JSON.stringify({ nbformat: 4, nbformat_minor: 5, metadata: { kernelspec: { name: 'python3', display_name: 'Python 3' } }, cells });

describe('whole-notebook runs (integration)', function () {
  this.timeout(180_000);
  let net: Network;
  before(async function () {
    net = await Network.start();
    const offers = await net.client().offers();
    // The worker picks an interpreter with ipykernel by itself (test.sh installs Debian's).
    if (!offers[0]?.stack?.kernels) {
      await net.stop();
      this.skip();
    }
  });
  after(async () => net?.stop());

  it('offers say which Python the worker has and that it runs notebooks', async () => {
    const r = await hearth(['gpus', '--json'], net.env());
    const [offer] = JSON.parse(r.stdout) as { stack: { python: string; kernels: boolean } }[];
    assert.match(offer!.stack.python, /^3\.\d+/);
    assert.equal(offer!.stack.kernels, true);
    const table = await hearth(['gpus'], net.env());
    assert.match(table.stdout, /NOTEBOOKS/);
  });

  it('runs the cells in order with magics, shell lines and a figure, stops at the error, and brings the executed notebook back', async () => {
    const ws = workspace({
      'nb/exp.ipynb': notebook([
        code('x = 21\nprint("hello from the kernel")'),
        { cell_type: 'markdown', metadata: {}, source: ['# prose'] },
        code('%time y = x * 2\n!echo shell works\ny'),
        code('import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()'),
        code('import sys\nfor i in range(3):\n    print(f"\\rstep {i}", end="")\nprint(file=sys.stderr)'),
        code('1 / 0'),
        code('print("not reached")'),
      ]),
    });
    const r = await hearth(['run', join(ws, 'nb', 'exp.ipynb')], net.env(), { cwd: ws });
    assert.equal(r.code, 1, r.stderr);
    const job = r.stderr.split('\n')[0]!;
    assert.match(r.stdout, /hello from the kernel/);
    assert.match(r.stdout, /shell works/);
    assert.match(r.stdout, /Out\[2\]: 42/);
    assert.match(r.stdout, /<Figure size/);
    assert.match(r.stdout, /\rstep 2/);
    assert.match(plain(r.stderr), /ZeroDivisionError: division by zero/);
    assert.doesNotMatch(r.stdout, /not reached/);

    // The same outputs are events naming their cell by its index in the notebook (markdown cells
    // count), so an editor with the notebook open can put each in its cell.
    const byCell = new Map<string, string[]>();
    for await (const e of net.client().events(job)) {
      if (e.body.type === 'kernel' && e.body.requestId) byCell.set(e.body.requestId, [...(byCell.get(e.body.requestId) ?? []), e.body.msgType]);
    }
    assert.deepEqual([...byCell.keys()], ['cell_00000000', 'cell_00000002', 'cell_00000003', 'cell_00000004', 'cell_00000005']);
    assert.ok(byCell.get('cell_00000002')!.includes('execute_result'));
    assert.equal(byCell.get('cell_00000005')!.at(-1), 'execute_reply');

    const dest = join(ws, 'back');
    const pulled = await hearth(['pull', job, '--dest', dest], net.env());
    assert.equal(pulled.code, 0, pulled.stderr);
    // `hearth run` uploads the notebook's folder: the notebook comes back at its path in there.
    const nb = JSON.parse(readFileSync(join(dest, 'exp.ipynb'), 'utf8')) as { nbformat: number; cells: NbCell[] };
    assert.equal(nb.nbformat, 4);
    const cells = nb.cells.filter((c) => c.cell_type === 'code');
    assert.deepEqual(cells.map((c) => c.execution_count), [1, 2, 3, 4, 5, null]);
    assert.deepEqual(cells[0]!.outputs, [{ output_type: 'stream', name: 'stdout', text: ['hello from the kernel\n'] }]);
    const result = cells[1]!.outputs!.find((o) => o.output_type === 'execute_result')!;
    assert.equal(result.execution_count, 2);
    assert.deepEqual(result.data!['text/plain'], ['42']);
    const figure = cells[2]!.outputs!.find((o) => o.output_type === 'display_data')!;
    assert.match(String(figure.data!['image/png']), /^iVBORw0KGgo/, 'a PNG, base64');
    assert.equal(cells[4]!.outputs![0]!.ename, 'ZeroDivisionError');
    assert.deepEqual(cells[5]!.outputs, []);
    assert.equal(nb.cells[1]!.cell_type, 'markdown');
  });

  it('--allow-errors runs every cell and succeeds with the error kept in the notebook', async () => {
    const ws = workspace({ 'e.ipynb': notebook([code('raise ValueError("kept")'), code('print("still ran")')]) });
    const r = await hearth(['run', join(ws, 'e.ipynb'), '--allow-errors'], net.env(), { cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /still ran/);
    assert.match(plain(r.stderr), /ValueError: kept/);
  });

  it('hearth kernel: a kernel from the shell keeps its state between execs, and exec fails when the code raises', async () => {
    const started = await hearth(['kernel', 'start'], net.env());
    assert.equal(started.code, 0, started.stderr);
    const id = started.stdout.trim();
    try {
      assert.equal((await hearth(['kernel', 'exec', id, 'x = 41'], net.env())).code, 0);
      const r = await hearth(['kernel', 'exec', id, 'print(x + 1)\nx'], net.env());
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^42\nOut\[2\]: 41\n$/);
      const bad = await hearth(['kernel', 'exec', id, '1/0'], net.env());
      assert.equal(bad.code, 1);
      assert.match(plain(bad.stderr), /ZeroDivisionError/);
    } finally {
      assert.equal((await hearth(['kernel', 'stop', id], net.env())).code, 0);
    }
    // The lease it took for itself ends with it.
    const leaseId = (await net.client().job(id)).leaseId;
    await waitFor('the kernel\'s own lease to end', async () => ((await net.client().lease(leaseId)).status === 'released' ? true : undefined), 30_000);
  });

  it('raw writes to fd 1 go to the log, an error that mentions a dead kernel is just an error, and a re-run notebook comes back', async () => {
    const ws = workspace({
      'r.ipynb': notebook([code('import os\nos.write(1, b"raw-no-newline")'), code('raise RuntimeError("the kernel died, said my code")'), code('print("next cell ran")')]),
    });
    const r = await hearth(['run', join(ws, 'r.ipynb'), '--allow-errors'], net.env(), { cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, /raw-no-newline/);
    assert.match(r.stdout, /next cell ran/);
    const job = r.stderr.split('\n')[0]!;
    const dest = join(ws, 'back');
    assert.equal((await hearth(['pull', job, '--dest', dest], net.env())).code, 0);
    // Run the executed notebook again: it is unchanged from the upload only in name.
    const again = await hearth(['run', join(dest, 'r.ipynb'), '--allow-errors'], net.env(), { cwd: dest });
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual((await net.client().artifacts(again.stderr.split('\n')[0]!)).map((a) => a.path), ['r.ipynb']);
  });

  it('a notebook that is not JSON fails with a clear reason', async () => {
    const ws = workspace({ 'bad.ipynb': '{ not json' });
    const r = await hearth(['run', join(ws, 'bad.ipynb')], net.env(), { cwd: ws });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cannot read bad\.ipynb/);
  });
});
