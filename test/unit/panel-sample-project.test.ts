// The sample project `npm start -- --vscode` opens (examples/quickstart), run for real with
// python3 as a worker runs it, and the plan of scripts/start.sh: its documented flags reach
// code-server, the broker and the extension.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readTfEvents } from '../../src/shared/tfevents';

const ROOT = path.resolve(__dirname, '..', '..');
const SAMPLE = path.join(ROOT, 'examples/quickstart');
// Debian's Python, as the worker on these machines runs jobs with (see scripts/setup.sh)
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

describe('the quick start sample project and start.sh', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'hearth-sample-'));
    cpSync(SAMPLE, path.join(dir, 'p'), { recursive: true });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('src/train.py prints a \\r progress bar as wide as COLUMNS, writes TensorBoard scalars and saves outputs/model.pt', () => {
    const cwd = path.join(dir, 'p');
    // as the worker runs an entry: from the project's root, with COLUMNS and LINES set
    const out = execFileSync(PYTHON, ['src/train.py'], { cwd, env: { PATH: process.env.PATH, STEPS: '30', STEP_SECONDS: '0', COLUMNS: '120', LINES: '40' }, encoding: 'utf8' });
    const bars = out.split(/[\r\n]/).filter((l) => l.startsWith('train '));
    assert.equal(bars.length, 30, out);
    for (const b of bars) assert.equal(b.length, 119, `one column short of COLUMNS, as tqdm does: ${JSON.stringify(b)}`);
    assert.match(out, /train_loss=/);
    assert.match(out, /saved outputs\/model\.pt/);
    assert.ok(existsSync(path.join(cwd, 'outputs/model.pt')));
    const files = readdirSync(path.join(cwd, 'runs')).filter((f) => f.includes('tfevents'));
    assert.equal(files.length, 1);
    const { scalars, errors } = readTfEvents(readFileSync(path.join(cwd, 'runs', files[0]!)));
    assert.deepEqual(errors, []);
    const byTag = new Map<string, number>();
    for (const s of scalars) byTag.set(s.tag, (byTag.get(s.tag) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries(byTag), { 'loss/train_loss': 30, 'loss/val_loss': 30, lr: 30 });
  });

  it('notebook.ipynb is an nbformat 4 notebook with code cells', () => {
    const nb = JSON.parse(readFileSync(path.join(SAMPLE, 'notebook.ipynb'), 'utf8')) as { nbformat: number; cells: { cell_type: string }[] };
    assert.equal(nb.nbformat, 4);
    assert.ok(nb.cells.filter((c) => c.cell_type === 'code').length >= 2);
  });

  it('start.sh --vscode: --vscode-port is the port, --data-dir reaches the broker and the extension, the sample project opens', () => {
    const dataDir = path.join(dir, 'data');
    const plan = execFileSync('bash', [path.join(ROOT, 'scripts/start.sh'), '--vscode', '--vscode-port', '8123', '--data-dir', dataDir, '--port', '7801', '--dry-run'], {
      encoding: 'utf8',
      env: { ...process.env, HEARTH_DATA_DIR: '/nonexistent-should-not-be-used', HEARTH_VSCODE_PORT: '9999' },
    });
    assert.match(plan, new RegExp(`^hearth up: +node \\S+/dist/cli\\.js --data-dir ${dataDir} up --port 7801$`, 'm'));
    assert.match(plan, new RegExp(`^code-server: http://127\\.0\\.0\\.1:8123/\\?folder=${SAMPLE}$`, 'm'));
    assert.match(plan, new RegExp(`^extension: +HEARTH_DATA_DIR=${dataDir}$`, 'm'));
    const bad = spawnSync('bash', [path.join(ROOT, 'scripts/start.sh'), '--vscode', '--vscode-port', 'eighty', '--dry-run'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--vscode-port takes a port number/);
  });
});
