// The run panel's webview in a real browser (Debian's headless Chromium): the handshake, seq
// deduplication, what it reports drawing, and the terminal's handling of '\r' and '\n'.
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
/* eslint-enable @typescript-eslint/no-explicit-any */

interface Posted {
  type: string;
  [k: string]: unknown;
}

const JOB = {
  id: 'job_harness01',
  leaseId: 'lease_harness01',
  workerId: 'wrk_harness01',
  entry: 'train.py',
  status: 'running',
  createdAt: 1,
  startedAt: 2,
  endedAt: null,
  exitCode: null,
  reason: null,
  lastSeq: 0,
};

const log = (seq: number, data: string) => ({ seq, ts: 0, body: { type: 'log', stream: 'stdout', data } });
const scalars = (seq: number, tag: string, from: number, count: number, value: (i: number) => number | string = (i) => i) => ({
  seq,
  ts: 0,
  body: {
    type: 'scalars',
    points: Array.from({ length: count }, (_, k) => ({ run: '.', tag, step: from + k, wallTime: 1000 + from + k, value: value(from + k) })),
  },
});

describe('panel webview in Chromium', function () {
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
    dir = mkdtempSync(path.join(tmpdir(), 'hearth-panel-webview-'));
    url = await buildPanelHarness(dir);
    ({ ctx, close } = await launchChromium());
  });
  after(async () => {
    await close?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    page = await ctx.newPage();
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
  /** the last 'state' the panel posted once it satisfies `ok` */
  const stateWhen = async (ok: (s: Posted) => boolean): Promise<Posted> => {
    for (let i = 0; i < 200; i++) {
      const states = (await posted()).filter((m) => m.type === 'state');
      const last = states[states.length - 1];
      if (last && ok(last)) return last;
      await page.waitForTimeout(50);
    }
    assert.fail(`no matching state; last: ${JSON.stringify((await posted()).filter((m) => m.type === 'state').pop())}`);
  };

  it("says 'ready' with lastSeq 0 first and posts nothing else before the host speaks", async () => {
    await page.waitForTimeout(300);
    assert.deepEqual(await posted(), [{ type: 'ready', lastSeq: 0 }]);
  });

  it('keeps each event once when batches overlap, and reports log bytes and points drawn', async () => {
    await send({ type: 'init', jobId: JOB.id, job: JOB, options: {} });
    await send({ type: 'events', events: [log(1, 'héllo\n'), scalars(2, 'loss', 0, 100), log(3, 'two\n')] });
    // a resend after a reconnect overlaps what was already there
    await send({ type: 'events', events: [log(3, 'two\n'), scalars(2, 'loss', 0, 100), scalars(4, 'loss', 100, 50, () => 'NaN'), log(5, 'end\n')] });
    const s = await stateWhen((x) => x.lastSeq === 5);
    assert.equal(s.logBytes, Buffer.byteLength('héllo\ntwo\nend\n'));
    assert.deepEqual(s.series, { '.|loss': 150 });
    assert.equal(s.status, 'running');
    // and the chart for the tag exists, with its point count in the title
    const title = await page.locator('.chart-card[data-tag="loss"] .chart-title .count').textContent();
    assert.equal(title, '150');
  });

  it("draws '\\r' progress bars in place and '\\n' as a new line, as a terminal does", async () => {
    await send({ type: 'init', jobId: JOB.id, job: JOB, options: {} });
    await send({ type: 'events', events: [log(1, 'start\n10% [#.........]\r50% [#####.....]\r'), log(2, '100% [##########]\nnext line\n')] });
    await stateWhen((x) => x.lastSeq === 2);
    await page.waitForFunction(() => (document.querySelector('.xterm-rows')?.textContent ?? '').includes('next line'));
    const rows: string[] = await page.evaluate(() => [...document.querySelectorAll('.xterm-rows > div')].map((d: { textContent: string }) => d.textContent.trimEnd()));
    assert.deepEqual(rows.slice(0, 4), ['start', '100% [##########]', 'next line', '']);
  });

  it('shows what a worker sends to take over a terminal (clear, title, clipboard) as text, keeping colours (issue 14, finding 12)', async () => {
    await send({ type: 'init', jobId: JOB.id, job: JOB, options: {} });
    await send({ type: 'events', events: [log(1, 'kept line\n'), log(2, '\x1b[2J\x1b[H\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\x1b[31mred\x1b[0m\n')] });
    await stateWhen((x) => x.lastSeq === 2);
    await page.waitForFunction(() => (document.querySelector('.xterm-rows')?.textContent ?? '').includes('red'));
    const rows: string[] = await page.evaluate(() => [...document.querySelectorAll('.xterm-rows > div')].map((d: { textContent: string }) => d.textContent.trimEnd()));
    assert.equal(rows[0], 'kept line', 'the screen was not cleared');
    assert.equal(rows[1], '\\x1b[2J\\x1b[H\\x1b]0;pwned\\x07\\x1b]52;c;ZXZpbA==\\x07red');
    // the colour is a colour: the word is in a styled span, not printed as an escape
    assert.ok(await page.evaluate(() => [...document.querySelectorAll('.xterm-rows span')].some((e: { textContent: string; className: string }) => e.textContent === 'red' && /xterm-fg-1\b/.test(e.className))));
  });

  it("takes the host's default smoothing and x axis into its controls", async () => {
    await send({ type: 'init', jobId: JOB.id, job: JOB, options: { smoothing: 0.3, xAxis: 'wall' } });
    await page.waitForFunction(() => document.querySelector('select.x-axis')?.value === 'wall');
    assert.equal(await page.inputValue('input[type=range]'), '0.3');
    assert.equal(await page.locator('.smoothing-value').textContent(), '0.300');
  });

  it('follows status events and reports an invalid host message without changing anything', async () => {
    await send({ type: 'init', jobId: JOB.id, job: JOB, options: {} });
    await send({ type: 'events', events: [{ seq: 1, ts: 0, body: { type: 'status', status: 'failed', exitCode: 3 } }] });
    await stateWhen((x) => x.status === 'failed');
    assert.equal(await page.locator('.header .exit').textContent(), 'exit 3');
    await send({ type: 'events', events: [{ seq: 2, ts: 0, body: { type: 'log', stream: 'stdin', data: 'x' } }] });
    await page.waitForFunction(() => (window.__posted as Posted[]).some((m) => m.type === 'error'));
    const err = (await posted()).find((m) => m.type === 'error');
    assert.match(String(err?.message), /bad message from host/);
    const s = await stateWhen(() => true);
    assert.equal(s.lastSeq, 1);
  });

  it('says "installing packages" while the worker installs the run\'s requirements, then the run\'s own status', async () => {
    await send({ type: 'init', jobId: JOB.id, job: { ...JOB, status: 'queued', startedAt: null }, options: {} });
    await send({ type: 'events', events: [
      { seq: 1, ts: 0, body: { type: 'setup', phase: 'installing', source: 'requirements.txt' } },
      log(2, 'Collecting hearthtiny==1.2.3\n'),
    ] });
    await stateWhen((x) => x.lastSeq === 2);
    assert.equal(await page.locator('.header .status').textContent(), 'installing packages');
    await page.waitForFunction(() => (document.querySelector('.xterm-rows')?.textContent ?? '').includes('Collecting hearthtiny'));
    assert.match(await page.locator('.xterm-rows').textContent() ?? '', /installing packages \(requirements\.txt\)…/);
    await send({ type: 'events', events: [
      { seq: 3, ts: 0, body: { type: 'setup', phase: 'ready', source: 'requirements.txt' } },
      { seq: 4, ts: 1, body: { type: 'status', status: 'running' } },
    ] });
    await stateWhen((x) => x.lastSeq === 4);
    assert.equal(await page.locator('.header .status').textContent(), 'running');
  });
});
