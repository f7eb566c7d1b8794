// The run panel's webview as a person meets it in the first hour (issue 8, items 3–7), in Debian's
// headless Chromium: progress bars wider than the pane, every glyph visible, actions and links,
// chart tooltips, axes and downloads, and what the empty and error states say.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { buildPanelHarness, CHROMIUM, haveChromium, launchChromium } from './panel-webview-harness';

// Browser globals for the functions run inside the page; this module only.
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const window: any;
declare const document: any;
declare const Image: any;
/* eslint-enable @typescript-eslint/no-explicit-any */

interface Posted {
  type: string;
  [k: string]: unknown;
}

const JOB = {
  id: 'job_harness01',
  leaseId: 'lease_harness01',
  workerId: 'wrk_harness01',
  entry: 'src/train.py',
  status: 'running',
  createdAt: 1,
  startedAt: 2,
  endedAt: null,
  exitCode: null,
  reason: null,
  lastSeq: 0,
};

const log = (seq: number, data: string) => ({ seq, ts: 0, body: { type: 'log', stream: 'stdout', data } });
const points = (seq: number, pts: Array<{ run?: string; tag: string; step: number; wallTime: number; value: number }>) => ({
  seq,
  ts: 0,
  body: { type: 'scalars', points: pts.map((p) => ({ run: '.', ...p })) },
});

describe('panel webview, the first hour (issue 8)', function () {
  this.timeout(60_000);
  let dir: string;
  let url: string;
  let ctx: BrowserContext;
  let close: () => Promise<void>;
  let page: Page;

  before(async function () {
    if (!haveChromium()) {
      console.log(`      (skipped: ${CHROMIUM} is missing; apt-get install -y chromium)`);
      this.skip();
    }
    dir = mkdtempSync(path.join(tmpdir(), 'hearth-panel-first-hour-'));
    url = await buildPanelHarness(dir);
    ({ ctx, close } = await launchChromium());
  });
  after(async () => {
    await close?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    page = await ctx.newPage();
    await page.setViewportSize({ width: 1400, height: 900 });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    assert.deepEqual(errors, []);
  });
  afterEach(async () => {
    await page?.close();
  });

  const posted = (): Promise<Posted[]> => page.evaluate(() => window.__posted as Posted[]);
  const send = (msg: unknown): Promise<void> => page.evaluate((m) => window.postMessage(m, '*'), msg);
  const init = (job: unknown = JOB): Promise<void> => send({ type: 'init', jobId: JOB.id, job, options: {} });
  const logLines = (): Promise<string[]> => page.evaluate(() => window.__hearthPanel.logLines() as string[]);
  /** waits until the log holds a line containing `text` */
  const waitForLog = (text: string): Promise<unknown> =>
    page.waitForFunction((t) => (window.__hearthPanel.logLines() as string[]).some((l: string) => l.includes(t)), text);

  describe('item 3: progress bars', () => {
    const bar = (pct: number): string => `epoch 1: ${String(pct).padStart(3)}%|${'#'.repeat(pct)}${' '.repeat(100 - pct)}| ${pct}/100 [00:0${pct % 10}<00:10, 9.9it/s]`;

    it('keeps a \\r bar wider than the pane as one line, through every update and resize', async () => {
      await page.setViewportSize({ width: 700, height: 600 });
      await init();
      let data = 'start\n';
      for (let p = 0; p <= 100; p += 5) data += `\r${bar(p)}`;
      // split mid-bar and between '\r' and the text, as pipes deliver it
      await send({ type: 'events', events: [log(1, data.slice(0, 700)), log(2, data.slice(700)), log(3, '\nafter\n')] });
      await waitForLog('after');
      const lines = (await logLines()).filter((l) => l.trim() !== '');
      assert.deepEqual(lines, ['start', bar(100), 'after'], 'one line for the bar, its last state');
      for (const width of [460, 1300, 560]) {
        await page.setViewportSize({ width, height: 600 });
        await page.waitForTimeout(250);
        const after = (await logLines()).filter((l) => l.trim() !== '');
        assert.deepEqual(after, ['start', bar(100), 'after'], `after resizing to ${width}px`);
      }
    });

    it('rewrites a wrapped bar in place while it is still running (no trailing newline yet)', async () => {
      await page.setViewportSize({ width: 600, height: 600 });
      await init();
      await send({ type: 'events', events: [log(1, `head\n\r${bar(10)}`), log(2, `\r${bar(20)}`), log(3, `\r${bar(30)}`)] });
      await page.waitForFunction(() => (window.__hearthPanel.logLines() as string[]).some((l: string) => l.includes('30/100')));
      const lines = (await logLines()).filter((l) => l.trim() !== '');
      assert.deepEqual(lines, ['head', bar(30)]);
    });

    it('gives the log the whole width until a run has scalars, then a splitter between log and charts', async () => {
      await init();
      await send({ type: 'events', events: [log(1, 'hello\n')] });
      await waitForLog('hello');
      const widths = () =>
        page.evaluate(() => ({
          main: document.querySelector('.main').getBoundingClientRect().width,
          log: document.querySelector('.log-pane').getBoundingClientRect().width,
          charts: document.querySelector('.charts-pane').getBoundingClientRect().width,
          splitter: document.querySelector('.splitter')?.getBoundingClientRect().width ?? 0,
        }));
      const before = await widths();
      assert.equal(before.log, before.main, 'no scalars: the log takes the whole width');
      assert.equal(before.charts, 0);
      await send({ type: 'events', events: [points(2, [{ tag: 'loss', step: 1, wallTime: 1000, value: 1 }])] });
      await page.waitForFunction(() => document.querySelector('.charts-pane').getBoundingClientRect().width > 0);
      const split = await widths();
      assert.ok(split.log < split.main && split.charts > 0 && split.splitter > 0, JSON.stringify(split));
      // drag the splitter 200 px to the right: the log grows by as much
      const box = await page.locator('.splitter').boundingBox();
      assert.ok(box);
      await page.mouse.move(box.x + box.width / 2, box.y + 50);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width / 2 + 200, box.y + 50, { steps: 5 });
      await page.mouse.up();
      const dragged = await widths();
      assert.ok(Math.abs(dragged.log - split.log - 200) < 3, `the log grew by 200 px: ${split.log} → ${dragged.log}`);
      // and from the keyboard: focus the splitter, arrow left gives the charts 5% more
      await page.locator('.splitter').focus();
      await page.keyboard.press('ArrowLeft');
      const keyed = await widths();
      assert.ok(Math.abs(dragged.log - keyed.log - 0.05 * keyed.main) < 3, `${dragged.log} → ${keyed.log}`);
    });
  });

  describe('item 4: every character of the log is visible', () => {
    it('draws underscores (train_loss reads train_loss, not train loss) in VS Code\'s default editor font size', async () => {
      // VS Code's default editor font size; with DejaVu Sans Mono (Linux's monospace) at 14 px,
      // rows of line height 1 clipped the underscores away
      await page.evaluate(() => document.documentElement.style.setProperty('--vscode-editor-font-size', '14px'));
      await init();
      await send({ type: 'events', events: [log(1, '____________________\n')] });
      await waitForLog('____');
      // the pixels of the first row as a person sees them: the underscores must leave ink there
      const row = page.locator('.xterm-rows > div').first();
      const png = (await row.screenshot()).toString('base64');
      const ink = await page.evaluate(async (b64: string) => {
        const img = new Image();
        img.src = `data:image/png;base64,${b64}`;
        await img.decode();
        const c = document.createElement('canvas');
        c.width = img.width;
        c.height = img.height;
        const g = c.getContext('2d');
        g.drawImage(img, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        // light text on the dark theme: count clearly bright pixels
        for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 300) n++;
        return n;
      }, png);
      assert.ok(ink > 20, `the underscores leave ink in their row (${ink} bright pixels)`);
    });
  });

  describe('item 5: actions and links', () => {
    it('offers Stop while the run is live, then Pull Weights and Re-run, and posts what was clicked', async () => {
      await init();
      await page.locator('button.action-stop').waitFor({ state: 'visible' });
      assert.equal(await page.locator('button.action-pull').isVisible(), false);
      await page.locator('button.action-stop').click();
      await send({ type: 'events', events: [{ seq: 1, ts: 5, body: { type: 'status', status: 'succeeded', exitCode: 0 } }] });
      await page.locator('button.action-pull').waitFor({ state: 'visible' });
      assert.equal(await page.locator('button.action-stop').isVisible(), false);
      await page.locator('button.action-pull').click();
      await page.locator('button.action-rerun').click();
      const actions = (await posted()).filter((m) => m.type === 'action').map((m) => m.action);
      assert.deepEqual(actions, ['stop', 'pull', 'rerun']);
    });

    it('shows artifacts as links that ask the host to open them, marked once pulled', async () => {
      await init();
      const sha = 'a'.repeat(64);
      await send({ type: 'events', events: [{ seq: 1, ts: 0, body: { type: 'artifact', artifact: { path: 'outputs/model.pt', sha256: sha, size: 2048 } } }] });
      const link = page.locator('.artifacts a.path', { hasText: 'outputs/model.pt' });
      await link.waitFor({ state: 'visible' });
      await link.click();
      const open = (await posted()).filter((m) => m.type === 'openArtifact');
      assert.deepEqual(open, [{ type: 'openArtifact', path: 'outputs/model.pt' }]);
      await send({ type: 'pulled', paths: ['outputs/model.pt'] });
      await page.locator('.artifact .pulled').waitFor({ state: 'visible' });
    });

    it('links a remote traceback path to the local file and line', async () => {
      await init();
      const tb = 'Traceback (most recent call last):\n  File "/var/lib/hearth/worker/jobs/job_harness01/src/train.py", line 42, in <module>\n    main()\nValueError: train_loss\n';
      await send({ type: 'events', events: [log(1, tb)] });
      await waitForLog('ValueError');
      // hover the path in the second row, then click it
      const row = page.locator('.xterm-rows > div').nth(1);
      const box = await row.boundingBox();
      assert.ok(box);
      // the screen is cols cells wide; aim at cell 30, inside the path
      const cellW = await page.evaluate(() => document.querySelector('.xterm-screen').getBoundingClientRect().width / window.__hearthPanel.logCols());
      const x = box.x + 30.5 * cellW;
      await page.mouse.move(x, box.y + box.height / 2);
      await page.waitForTimeout(200);
      await page.mouse.click(x, box.y + box.height / 2);
      await page.waitForFunction(() => (window.__posted as Posted[]).some((m) => m.type === 'openSource'));
      const open = (await posted()).filter((m) => m.type === 'openSource');
      assert.deepEqual(open, [{ type: 'openSource', jobId: 'job_harness01', path: 'src/train.py', line: 42 }]);
    });


    it('links a traceback path that wraps onto the next row, from either row', async () => {
      await page.setViewportSize({ width: 420, height: 500 });
      await init();
      const tb = '  File "/var/lib/hearth/worker/jobs/job_harness01/src/models/very_long_module_name.py", line 7, in forward\n';
      await send({ type: 'events', events: [log(1, tb)] });
      await waitForLog('in forward');
      const cols = await page.evaluate(() => window.__hearthPanel.logCols());
      assert.ok(cols < tb.length - 20, `the line wraps (${cols} columns)`);
      // click in the second row, on the file name's end
      const row = page.locator('.xterm-rows > div').nth(1);
      const box = await row.boundingBox();
      assert.ok(box);
      const cellW = await page.evaluate(() => document.querySelector('.xterm-screen').getBoundingClientRect().width / window.__hearthPanel.logCols());
      const text = (await row.textContent()) ?? '';
      const x = box.x + (text.indexOf('.py') + 0.5) * cellW;
      assert.ok(text.indexOf('.py') >= 0, `the second row holds the file name's end: ${text}`);
      await page.mouse.move(x, box.y + box.height / 2);
      await page.waitForTimeout(200);
      await page.mouse.click(x, box.y + box.height / 2);
      await page.waitForFunction(() => (window.__posted as Posted[]).some((m) => m.type === 'openSource'));
      const open = (await posted()).filter((m) => m.type === 'openSource');
      assert.deepEqual(open, [{ type: 'openSource', jobId: 'job_harness01', path: 'src/models/very_long_module_name.py', line: 7 }]);
    });
  });

  describe('item 6: charts', () => {
    const chart = (tag: string): string => `.chart-card[data-tag="${tag}"]`;
    const ticks = (tag: string) => page.evaluate((t) => window.__hearthPanel.charts.chart(t).ticks, tag);

    it('shows a tooltip with step, raw and smoothed value, wall and relative time for every run', async () => {
      await init();
      const wall0 = Date.UTC(2026, 10, 30, 12, 0, 0) / 1000;
      const pts = [];
      for (let i = 0; i <= 100; i++) {
        pts.push({ run: 'a', tag: 'loss', step: i, wallTime: wall0 + i, value: 1 + i });
        pts.push({ run: 'b', tag: 'loss', step: i, wallTime: wall0 + 30 + 2 * i, value: 500 - i });
      }
      await send({ type: 'events', events: [points(1, pts)] });
      const plot = page.locator(`${chart('loss')} .u-over`);
      await plot.waitFor({ state: 'visible' });
      const box = await plot.boundingBox();
      assert.ok(box);
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      const tip = page.locator(`${chart('loss')} .chart-tooltip`);
      await tip.waitFor({ state: 'visible' });
      const rows = await tip.locator('.tooltip-row').allTextContents();
      assert.equal(rows.length, 2, rows.join('\n'));
      for (const [k, run] of ['a', 'b'].entries()) {
        const r = rows[k] ?? '';
        assert.match(r, new RegExp(`^${run}`), r);
        const step = Number(/step ([\d,]+)/.exec(r)?.[1]?.replace(/,/g, ''));
        assert.ok(step >= 40 && step <= 60, r);
        const raw = run === 'a' ? 1 + step : 500 - step;
        assert.match(r, new RegExp(`value ${raw} `), r);
        assert.match(r, /smoothed [\d.]+/, r);
        assert.match(r, /wall \d\d:\d\d:\d\d/, r);
        const rel = run === 'a' ? step : 2 * step;
        const relText = rel >= 60 ? `${Math.floor(rel / 60)}m${String(rel % 60).padStart(2, '0')}s` : `${rel}s`;
        assert.match(r, new RegExp(`relative ${relText}$`), r);
      }
    });

    it('draws the point of a series that has only one', async () => {
      await init();
      await send({ type: 'events', events: [points(1, [{ tag: 'eval/acc', step: 10, wallTime: 1000, value: 0.5 }])] });
      await page.locator(`${chart('eval/acc')} canvas`).waitFor({ state: 'visible' });
      await page.waitForTimeout(300);
      const inked = await page.evaluate((t) => {
        const u = window.__hearthPanel.charts.chart(t).uplot;
        const dpr = window.devicePixelRatio || 1;
        const x = Math.round((u.valToPos(10, 'x', true) as number));
        const y = Math.round((u.valToPos(0.5, 'y', true) as number));
        const d = u.ctx.getImageData(x - 3 * dpr, y - 3 * dpr, 6 * dpr, 6 * dpr).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 128) n++;
        return n;
      }, 'eval/acc');
      assert.ok(inked > 10, `pixels drawn at the lone point: ${inked}`);
    });

    it('labels a wall-time axis with clock times that do not overlap, and titles both axes', async () => {
      await init({ ...JOB });
      await send({ type: 'init', jobId: JOB.id, job: JOB, options: { xAxis: 'wall' } });
      const wall0 = Date.UTC(2026, 10, 30, 12, 0, 0) / 1000;
      const pts = Array.from({ length: 200 }, (_, i) => ({ tag: 'loss', step: i, wallTime: wall0 + i * 37, value: Math.exp(-i / 50) }));
      await send({ type: 'events', events: [points(1, pts)] });
      await page.locator(`${chart('loss')} canvas`).waitFor({ state: 'visible' });
      await page.waitForFunction((t) => window.__hearthPanel.charts.chart(t)?.ticks.x.values.length > 1, 'loss');
      const t = (await ticks('loss')).x;
      const gaps = await page.evaluate(
        ([tag, tk]) => {
          const u = window.__hearthPanel.charts.chart(tag).uplot;
          const ctx = document.createElement('canvas').getContext('2d');
          ctx.font = u.axes[0].font[0] ?? '11px sans-serif';
          const xs = tk.values.map((v: number) => u.valToPos(v, 'x'));
          const ws = tk.labels.map((l: string) => ctx.measureText(l).width);
          const out = [];
          for (let i = 1; i < xs.length; i++) out.push(xs[i] - xs[i - 1] - (ws[i] + ws[i - 1]) / 2);
          return { out, titles: [u.axes[0].label, u.axes[1].label] };
        },
        ['loss', t] as const,
      );
      assert.ok(t.labels.every((l: string) => /^\d\d:\d\d(:\d\d)?$/.test(l)), t.labels.join(' '));
      assert.ok(gaps.out.every((g: number) => g >= 8), `space between neighbouring labels: ${gaps.out.map((g: number) => g.toFixed(0)).join(', ')}`);
      assert.deepEqual(gaps.titles, ['wall time', 'value']);
    });

    it('labels a log scale over many decades with powers of ten only', async () => {
      await send({ type: 'init', jobId: JOB.id, job: JOB, options: {} });
      const pts = Array.from({ length: 100 }, (_, i) => ({ tag: 'lr', step: i, wallTime: 1000 + i, value: 10 ** (-6 + (7 * i) / 99) }));
      await send({ type: 'events', events: [points(1, pts)] });
      await page.locator('label.log-y input').check();
      await page.waitForFunction((t) => window.__hearthPanel.charts.chart(t)?.uplot?.axes[1].label === 'value (log scale)' && window.__hearthPanel.charts.chart(t).ticks.y.values.length > 1, 'lr');
      const t = (await ticks('lr')).y;
      const shown = t.labels.filter((l: string) => l !== '');
      assert.ok(shown.length >= 3, t.labels.join(' '));
      for (const l of shown) assert.match(l, /^(1e-?\d+|0\.0*1|1|10+)$/, `a power of ten: ${t.labels.join(' ')}`);
      const titles = await page.evaluate(() => window.__hearthPanel.charts.chart('lr').uplot.axes[1].label);
      assert.equal(titles, 'value (log scale)');
    });

    it('downloads a chart as PNG and its data as CSV', async () => {
      await init();
      const pts = Array.from({ length: 5 }, (_, i) => ({ run: 'r1', tag: 'train/loss', step: i, wallTime: 1000 + i, value: 5 - i }));
      await send({ type: 'events', events: [points(1, pts)] });
      await page.locator(`${chart('train/loss')} canvas`).waitFor({ state: 'visible' });
      await page.waitForTimeout(200);
      await page.locator(`${chart('train/loss')} button`, { hasText: 'PNG' }).click();
      await page.locator(`${chart('train/loss')} button`, { hasText: 'CSV' }).click();
      const saves = (await posted()).filter((m) => m.type === 'save');
      assert.equal(saves.length, 2);
      const [png, csv] = saves as unknown as Array<{ format: string; name: string; data: string }>;
      assert.equal(png?.format, 'png');
      assert.equal(png?.name, 'train_loss.png');
      assert.deepEqual([...Buffer.from(png!.data, 'base64').subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
      assert.equal(csv?.name, 'train_loss.csv');
      const lines = csv!.data.trim().split('\n');
      assert.equal(lines[0], 'run,step,wall_time,value,smoothed');
      assert.equal(lines.length, 6);
      assert.match(lines[1] ?? '', /^r1,0,1000,5,5$/);
    });
  });

  describe('item 7: empty and error states', () => {
    it('says when the tag filter matches nothing, and when it is not a valid regex', async () => {
      await init();
      await send({ type: 'events', events: [points(1, [{ tag: 'loss', step: 1, wallTime: 1, value: 1 }, { tag: 'acc', step: 1, wallTime: 1, value: 1 }])] });
      await page.locator('.chart-card[data-tag="loss"]').waitFor({ state: 'visible' });
      await page.fill('input.filter', 'nothing-like-this');
      const empty = page.locator('.charts-pane .empty');
      await empty.waitFor({ state: 'visible' });
      assert.match((await empty.textContent()) ?? '', /No tag matches “nothing-like-this” — 2 tags hidden/);
      await page.fill('input.filter', 'lo(ss');
      assert.match((await empty.textContent()) ?? '', /not a valid regular expression/);
      assert.ok(await page.locator('input.filter.invalid').isVisible());
      await page.fill('input.filter', 'lo');
      await empty.waitFor({ state: 'hidden' });
    });

    it('counts log search matches and says when there is none', async () => {
      await init();
      await send({ type: 'events', events: [log(1, 'epoch 1 loss 3\nepoch 2 loss 2\nepoch 3 loss 1\n')] });
      await waitForLog('epoch 3');
      await page.fill('input.search', 'loss');
      await page.waitForFunction(() => window.__hearthPanel.searchStatus() === '1 of 3');
      await page.fill('input.search', 'accuracy');
      await page.waitForFunction(() => window.__hearthPanel.searchStatus() === 'No match');
      assert.equal(await page.locator('.search-count').textContent(), 'No match');
    });

    it('runs an elapsed clock while the run is live, also when the broker had not seen it start', async () => {
      // queued when the host looked; the 'running' event says when it started
      await init({ ...JOB, status: 'queued', startedAt: null });
      const started = Date.now() - 65_000;
      await send({ type: 'events', events: [{ seq: 1, ts: started, body: { type: 'status', status: 'running' } }] });
      await page.waitForFunction(() => /^1m0\d s$|^1m0\ds$/.test(document.querySelector('.header .elapsed').textContent));
      const first = await page.locator('.header .elapsed').textContent();
      await page.waitForFunction((f) => document.querySelector('.header .elapsed').textContent !== f, first, { timeout: 5000 });
    });

    it('labels a CPU host\'s telemetry CPU and RAM, not GPU 0 and VRAM', async () => {
      await init();
      const cpu = { index: 0, utilizationPct: 50, memoryUsedMiB: 4096, memoryTotalMiB: 16384, temperatureC: null, powerW: null, device: 'cpu' };
      await send({ type: 'events', events: [{ seq: 1, ts: 0, body: { type: 'telemetry', gpus: [cpu] } }] });
      const tele = page.locator('.telemetry');
      await tele.waitFor({ state: 'visible' });
      const text = await tele.innerText();
      assert.match(text, /CPU/);
      assert.doesNotMatch(text, /GPU 0/);
      assert.doesNotMatch(text, /temp|power/, 'a CPU host reports no temperature or power: no empty sparklines for them');
      assert.match(text, /RAM/);
    });
  });
});
