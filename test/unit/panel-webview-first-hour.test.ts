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
});
