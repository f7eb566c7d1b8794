// One uPlot chart per tag, grouped by tag prefix, every run of the job overlaid. All points are
// kept in the ScalarStore; each draw smooths incrementally and decimates to the pixels the chart
// has (M4), so 100 000 points per series draw as fast as a few thousand.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { alignSorted, type XYTable } from '../shared/align';
import { decimateM4, IncrementalM4, visibleRange } from '../shared/decimate';
import { EmaSmoother } from '../shared/smoothing';
import { tagGroup, tagMatcher, type ScalarSeries, type ScalarStore } from '../shared/scalar-store';
import type { XAxisMode } from '../shared/panel-protocol';
import { cssVar, runColour, withAlpha } from './theme';

export interface ChartSettings {
  smoothing: number;
  xAxis: XAxisMode;
  logY: boolean;
  filter: string;
  collapsed: Set<string>;
}

export interface DrawStats {
  draws: number;
  /** ms from the start of the last frame that drew to the last chart's uPlot draw hook */
  lastDrawMs: number;
  /** performance.now() when the last frame's charts had all drawn */
  lastDrawAt: number;
  /** points handed to uPlot in the last frame, after decimation */
  lastDrawnPoints: number;
  /** where the last frame's time went, in ms (plot: uPlot building paths and painting) */
  phases: Phases;
  /** points per series (`run|tag`) as of the last frame that drew its chart */
  drawn: Record<string, number>;
}

const CHART_HEIGHT = 190;

interface Phases {
  smooth: number;
  decimate: number;
  build: number;
  plot: number;
}
const newPhases = (): Phases => ({ smooth: 0, decimate: 0, build: 0, plot: 0 });
/** accumulates over one frame; copied into DrawStats when the frame is done */
let phases = newPhases();

export class ScalarCharts {
  private readonly charts = new Map<string, TagChart>();
  private readonly groups = new Map<string, { el: HTMLDetailsElement; grid: HTMLElement; count: HTMLElement }>();
  private readonly io: IntersectionObserver;
  private frame = 0;
  private matcher: (tag: string) => boolean = () => true;
  private pending = 0;
  private frameStart = 0;
  private frameHadDraws = false;
  private retry: ReturnType<typeof setTimeout> | undefined;
  readonly stats: DrawStats = { draws: 0, lastDrawMs: 0, lastDrawAt: 0, lastDrawnPoints: 0, phases: newPhases(), drawn: {} };
  /** called after a frame's charts have all drawn */
  onDrawn: () => void = () => {};
  onCollapsedChange: () => void = () => {};
  /** a chart's PNG (base64) or its data as CSV, to be saved by the host */
  onSave: (format: 'png' | 'csv', name: string, data: string) => void = () => {};

  constructor(
    private readonly root: HTMLElement,
    private readonly store: ScalarStore,
    readonly settings: ChartSettings,
  ) {
    this.io = new IntersectionObserver(
      (entries) => {
        for (const e of entries) {
          const c = this.charts.get((e.target as HTMLElement).dataset.tag ?? '');
          if (!c) continue;
          c.onScreen = e.isIntersecting;
          if (c.onScreen && c.dirty) this.schedule();
        }
      },
      // draw a little ahead of scrolling so charts are ready when they come into view
      { rootMargin: '300px 0px' },
    );
    new ResizeObserver(() => {
      for (const c of this.charts.values()) c.dirty = true;
      this.schedule();
    }).observe(root);
    this.matcher = tagMatcher(settings.filter);
  }

  /** New points arrived for these tags. */
  changed(tags: Iterable<string>): void {
    for (const tag of tags) {
      let c = this.charts.get(tag);
      if (!c) c = this.addChart(tag);
      c.dirty = true;
    }
    this.schedule();
  }

  /** Settings changed: `rebuild` for those that change the chart's axes, not just its data. */
  update(rebuild: boolean): void {
    this.matcher = tagMatcher(this.settings.filter);
    for (const [tag, c] of this.charts) {
      c.card.hidden = !this.matcher(tag);
      if (rebuild) c.destroyPlot();
      c.dirty = true;
    }
    for (const [name, g] of this.groups) {
      const shown = [...g.grid.children].filter((el) => !(el as HTMLElement).hidden).length;
      g.el.hidden = shown === 0;
      g.count.textContent = String(shown);
      g.el.open = !this.settings.collapsed.has(name);
    }
    this.schedule();
  }

  /** How many tag charts the filter leaves shown. */
  shownCount(): number {
    let n = 0;
    for (const c of this.charts.values()) if (!c.card.hidden) n++;
    return n;
  }

  /** A tag's chart, for tests. */
  chart(tag: string): TagChart | undefined {
    return this.charts.get(tag);
  }

  /** Theme changed: axis and grid colours are baked into uPlot's options. */
  rebuildAll(): void {
    for (const c of this.charts.values()) {
      c.destroyPlot();
      c.dirty = true;
    }
    this.schedule();
  }

  schedule(): void {
    if (this.frame === 0) this.frame = requestAnimationFrame(() => this.draw());
  }

  /** One frame: every visible chart whose data or settings changed is redrawn once. */
  private draw(): void {
    this.frame = 0;
    this.frameStart = performance.now();
    this.frameHadDraws = false;
    phases = newPhases();
    let points = 0;
    this.pending = 1; // held until the loop ends, so a synchronous draw hook cannot finish early
    const colours = axisColours();
    const drawOne = (c: TagChart): void => {
      this.pending++;
      this.frameHadDraws = true;
      points += c.draw(this.settings, this.store, colours);
      c.drawnAt = performance.now();
      for (const s of c.series) this.stats.drawn[`${s.run}|${s.tag}`] = s.n;
    };
    for (const c of this.charts.values()) {
      if (c.dirty && c.onScreen && !c.card.hidden) drawOne(c);
    }
    // Charts scrolled out of view are drawn too, so they are ready and the state the host sees
    // covers them, but only in a few ms left over and at most once a second each.
    let offscreenLeft = false;
    for (const c of this.charts.values()) {
      if (!c.dirty || c.onScreen || c.card.hidden || c.card.offsetParent === null) continue;
      if (performance.now() - this.frameStart > 8 || performance.now() - c.drawnAt < 1000) {
        offscreenLeft = true;
        continue;
      }
      drawOne(c);
    }
    if (offscreenLeft && this.retry === undefined) {
      this.retry = setTimeout(() => {
        this.retry = undefined;
        this.schedule();
      }, 250);
    }
    this.stats.lastDrawnPoints = points;
    this.chartDrawn();
  }

  private chartDrawn(): void {
    if (this.pending === 0) return;
    this.pending--;
    if (this.pending > 0) return;
    if (!this.frameHadDraws) return;
    this.stats.draws++;
    this.stats.lastDrawAt = performance.now();
    this.stats.lastDrawMs = this.stats.lastDrawAt - this.frameStart;
    phases.plot = this.stats.lastDrawMs - phases.smooth - phases.decimate - phases.build;
    this.stats.phases = phases;
    this.onDrawn();
  }

  private addChart(tag: string): TagChart {
    const groupName = tagGroup(tag);
    let g = this.groups.get(groupName);
    if (!g) {
      const el = document.createElement('details');
      el.className = 'group';
      el.open = !this.settings.collapsed.has(groupName);
      const summary = document.createElement('summary');
      const title = document.createElement('span');
      title.textContent = groupName;
      const count = document.createElement('span');
      count.className = 'count';
      summary.append(title, count);
      const grid = document.createElement('div');
      grid.className = 'chart-grid';
      el.append(summary, grid);
      el.addEventListener('toggle', () => {
        if (el.open) this.settings.collapsed.delete(groupName);
        else this.settings.collapsed.add(groupName);
        this.onCollapsedChange();
        this.schedule();
      });
      const names = [...this.groups.keys(), groupName].sort();
      const next = names[names.indexOf(groupName) + 1];
      this.root.insertBefore(el, next === undefined ? null : (this.groups.get(next)?.el ?? null));
      g = { el, grid, count };
      this.groups.set(groupName, g);
    }
    const c = new TagChart(tag, () => this.chartDrawn(), () => this.schedule(), this.store, this.settings, (f, n, d) => this.onSave(f, n, d));
    c.series = this.store.byTag.get(tag) ?? [];
    c.card.hidden = !this.matcher(tag);
    const tags = [...this.charts.keys(), tag].filter((t) => tagGroup(t) === groupName).sort();
    const next = tags[tags.indexOf(tag) + 1];
    g.grid.insertBefore(c.card, next === undefined ? null : (this.charts.get(next)?.card ?? null));
    this.charts.set(tag, c);
    const shown = [...g.grid.children].filter((el) => !(el as HTMLElement).hidden).length;
    g.count.textContent = String(shown);
    g.el.hidden = shown === 0;
    this.io.observe(c.card);
    return c;
  }
}

interface AxisColours {
  text: string;
  grid: string;
  font: string;
}

function axisColours(): AxisColours {
  return {
    text: cssVar('--vscode-descriptionForeground', cssVar('--vscode-foreground', '#999')),
    grid: cssVar('--vscode-editorWidget-border', 'rgba(128,128,128,0.25)'),
    font: `11px ${cssVar('--vscode-font-family', 'sans-serif')}`,
  };
}

/** What an axis last labelled: each tick's value and text ('' for an unlabelled tick). */
export interface AxisTicks {
  values: number[];
  labels: string[];
}

export class TagChart {
  readonly card: HTMLElement;
  private readonly plotEl: HTMLElement;
  private readonly tooltip: HTMLElement;
  /** the ticks of the x and y axes as last drawn, for tests */
  readonly ticks: { x: AxisTicks; y: AxisTicks } = { x: { values: [], labels: [] }, y: { values: [], labels: [] } };
  private readonly legendEl: HTMLElement;
  private readonly titleCount: HTMLElement;
  series: ScalarSeries[] = [];
  dirty = true;
  onScreen = false;
  drawnAt = -Infinity;
  private plot: uPlot | null = null;
  private plotRuns = 0;
  private readonly smoothers = new Map<ScalarSeries, EmaSmoother>();
  /** each series' smoothed values as of the last draw */
  private readonly smoothed = new Map<ScalarSeries, Float64Array>();
  private readonly decimators = new Map<ScalarSeries, IncrementalM4>();
  private smoothingDrawn = NaN;
  /** the x range the person zoomed to, or null for everything */
  private zoom: [number, number] | null = null;
  private settingData = false;
  private extent: [number, number] = [0, 0];
  private lastValues: Array<[number | null, number | null]> = [];

  constructor(
    readonly tag: string,
    private readonly drawn: () => void,
    private readonly schedule: () => void,
    private readonly store: ScalarStore,
    private readonly settings: ChartSettings,
    private readonly save: (format: 'png' | 'csv', name: string, data: string) => void,
  ) {
    this.card = document.createElement('div');
    this.card.className = 'chart-card';
    this.card.dataset.tag = tag;
    const title = document.createElement('div');
    title.className = 'chart-title';
    const name = document.createElement('span');
    name.textContent = tag;
    name.title = tag;
    this.titleCount = document.createElement('span');
    this.titleCount.className = 'count';
    const tools = document.createElement('span');
    tools.className = 'chart-tools';
    tools.append(
      smallButton('PNG', 'Download this chart as a PNG image', () => this.savePng()),
      smallButton('CSV', 'Download this chart’s data (every point of every run) as CSV', () => this.saveCsv()),
    );
    title.append(name, this.titleCount, tools);
    this.plotEl = document.createElement('div');
    this.plotEl.className = 'chart-plot';
    this.plotEl.style.height = `${CHART_HEIGHT}px`;
    this.tooltip = document.createElement('div');
    this.tooltip.className = 'chart-tooltip';
    this.tooltip.hidden = true;
    this.legendEl = document.createElement('div');
    this.legendEl.className = 'chart-legend';
    this.card.append(title, this.plotEl, this.legendEl);
  }

  /** the uPlot instance, for tests */
  get uplot(): uPlot | null {
    return this.plot;
  }

  destroyPlot(): void {
    this.plot?.destroy();
    this.plot = null;
    this.plotEl.replaceChildren();
    this.tooltip.hidden = true;
    this.zoom = null;
    // the x axis may have changed: the column grids are on the old one
    this.decimators.clear();
  }

  /** Redraws from the store; returns how many points went to uPlot. */
  draw(settings: ChartSettings, store: ScalarStore, colours: AxisColours): number {
    this.dirty = false;
    const width = Math.max(50, this.plotEl.clientWidth);
    const pxWidth = Math.ceil(width * (window.devicePixelRatio || 1));
    const xMode = settings.xAxis;
    const tables: XYTable[] = [];
    this.lastValues = [];
    let total = 0;
    let lo = Infinity;
    let hi = -Infinity;
    for (const s of this.series) {
      const n = s.n;
      if (n === 0) continue;
      let sm = this.smoothers.get(s);
      if (!sm) this.smoothers.set(s, (sm = new EmaSmoother()));
      if (s.inserted) sm.reset();
      const t0 = performance.now();
      // a new weight or an inserted point changes smoothed values before the end
      const smoothChanged = s.inserted || settings.smoothing !== this.smoothingDrawn;
      const smooth = sm.update(s.value, n, settings.smoothing);
      this.smoothed.set(s, smooth);
      const xsSrc = xMode === 'step' ? s.step : s.wall;
      const offset = xMode === 'relative' ? s.minWall : 0;
      const first = (xsSrc[0] as number) - offset;
      const last = (xsSrc[n - 1] as number) - offset;
      lo = Math.min(lo, first);
      hi = Math.max(hi, last);
      const t1 = performance.now();
      let idx: Uint32Array;
      if (this.zoom) {
        const [xMin, xMax] = this.zoom;
        let start = 0;
        let end = n;
        // only step is sure to be sorted; for time axes decimate everything against the zoom
        if (xMode === 'step') [start, end] = visibleRange(xsSrc, n, xMin + offset, xMax + offset);
        idx = decimateM4(xsSrc, s.value, start, end, xMin + offset, xMax + offset, pxWidth, smooth);
      } else {
        let dec = this.decimators.get(s);
        if (!dec) this.decimators.set(s, (dec = new IncrementalM4()));
        if (smoothChanged) dec.reset();
        idx = dec.update(xsSrc, s.value, smooth, n, pxWidth);
      }
      s.inserted = false;
      const t2 = performance.now();
      phases.smooth += t1 - t0;
      phases.decimate += t2 - t1;
      const m = idx.length;
      const xs = new Float64Array(m);
      const raw: Array<number | null> = new Array<number | null>(m);
      const sms: Array<number | null> = new Array<number | null>(m);
      for (let k = 0; k < m; k++) {
        const i = idx[k] as number;
        xs[k] = (xsSrc[i] as number) - offset;
        raw[k] = drawable(s.value[i] as number, settings.logY);
        sms[k] = drawable(smooth[i] as number, settings.logY);
      }
      total += m;
      phases.build += performance.now() - t2;
      tables.push({ xs, ys: [raw, sms] });
      this.lastValues.push([finiteOrNull(smooth[n - 1] as number), finiteOrNull(s.value[n - 1] as number)]);
    }
    this.smoothingDrawn = settings.smoothing;
    this.extent = [lo, hi];
    const runs = tables.length;
    const only = tables[0];
    const data = (
      runs === 0 ? [[], []] : runs === 1 && only ? [only.xs, ...only.ys] : alignSorted(tables)
    ) as unknown as uPlot.AlignedData;
    this.titleCount.textContent = this.series.reduce((a, s) => a + s.n, 0).toLocaleString();
    if (!this.plot || this.plotRuns !== runs) {
      this.plot?.destroy();
      this.plotEl.replaceChildren();
      this.plotRuns = runs;
      this.plot = new uPlot(this.options(settings, store, colours, width), data, this.plotEl);
      this.plot.over.append(this.tooltip);
    } else {
      if (this.plot.width !== width) this.plot.setSize({ width, height: CHART_HEIGHT });
      this.settingData = true;
      this.plot.setData(data, this.zoom === null);
      // setting x again makes uPlot fit y to what is in the zoomed range
      if (this.zoom) this.plot.setScale('x', { min: this.zoom[0], max: this.zoom[1] });
      this.settingData = false;
    }
    const cursor = this.plot.cursor;
    this.renderLegend(store, cursor.left !== undefined && cursor.left >= 0 ? (cursor.idx ?? null) : null);
    return total;
  }

  private options(settings: ChartSettings, store: ScalarStore, colours: AxisColours, width: number): uPlot.Options {
    const series: uPlot.Series[] = [{ label: settings.xAxis === 'step' ? 'step' : 'time' }];
    // a series of one point has no line to draw: show its point (the smoothed one, over the raw)
    const lonePoint = (u: uPlot, si: number): boolean => definedCount(u.data[si], 2) === 1;
    for (const s of this.series.filter((x) => x.n > 0)) {
      const colour = runColour(store.runIndex(s.run));
      series.push(
        { label: `${s.run} (raw)`, stroke: withAlpha(colour, 0.3), width: 1, points: { show: false } },
        { label: s.run, stroke: colour, width: 1.5, points: { show: lonePoint, size: 7, fill: colour, stroke: colour } },
      );
    }
    const axis = (): uPlot.Axis => ({
      stroke: colours.text,
      font: colours.font,
      labelFont: colours.font,
      labelSize: 16,
      labelGap: 0,
      grid: { stroke: colours.grid, width: 1 },
      ticks: { stroke: colours.grid, width: 1 },
    });
    const record = (which: 'x' | 'y', vals: number[], labels: string[]): string[] => {
      this.ticks[which] = { values: [...vals], labels };
      return labels;
    };
    const xAxis = axis();
    xAxis.label = settings.xAxis === 'step' ? 'step' : settings.xAxis === 'relative' ? 'time since start' : 'wall time';
    if (settings.xAxis === 'relative') {
      xAxis.space = 60;
      xAxis.values = (_u, vals) => record('x', vals, vals.map(formatDuration));
    } else if (settings.xAxis === 'wall') {
      // "23:59:59" is about 55 px at 11 px: leave room so neighbours never touch
      xAxis.space = 85;
      xAxis.values = (u, vals) => {
        const span = (u.scales.x?.max ?? 0) - (u.scales.x?.min ?? 0);
        return record('x', vals, vals.map((v) => formatWallTick(v, span)));
      };
    } else {
      xAxis.space = 60;
      xAxis.values = (_u, vals) => record('x', vals, vals.map(formatValue));
    }
    const yAxis = axis();
    yAxis.size = 56;
    yAxis.label = settings.logY ? 'value (log scale)' : 'value';
    yAxis.space = 24;
    yAxis.values = (_u, vals) => record('y', vals, settings.logY ? logTickLabels(vals) : vals.map(formatValue));
    return {
      width,
      height: CHART_HEIGHT,
      series,
      legend: { show: false },
      cursor: { drag: { x: true, y: false }, points: { show: false } },
      scales: {
        x: { time: settings.xAxis === 'wall' },
        y: settings.logY ? { distr: 3, log: 10 } : {},
      },
      axes: [xAxis, yAxis],
      hooks: {
        draw: [() => this.drawn()],
        setScale: [
          (u, key) => {
            if (key !== 'x' || this.settingData) return;
            const { min, max } = u.scales.x ?? {};
            if (min == null || max == null) return;
            const full = min <= this.extent[0] && max >= this.extent[1];
            const next: [number, number] | null = full ? null : [min, max];
            if (next === null && this.zoom === null) return;
            // zoomed (or back out): decimate again for the range now shown
            this.zoom = next;
            this.dirty = true;
            this.schedule();
          },
        ],
        setCursor: [
          (u) => {
            this.renderLegend(store, u.cursor.idx ?? null);
            this.renderTooltip(u);
          },
        ],
      },
    };
  }

  /** Step, raw and smoothed value, wall and relative time of every run at the cursor. */
  private renderTooltip(u: uPlot): void {
    const left = u.cursor.left;
    if (left === undefined || left < 0 || u.cursor.idx == null) {
      this.tooltip.hidden = true;
      return;
    }
    const x = u.posToVal(left, 'x');
    const mode = this.settings.xAxis;
    const rows: HTMLElement[] = [];
    for (const s of this.series) {
      if (s.n === 0) continue;
      const offset = mode === 'relative' ? s.minWall : 0;
      const i = nearestIndex(mode === 'step' ? s.step : s.wall, s.n, x + offset);
      const smooth = this.smoothed.get(s);
      const row = document.createElement('div');
      row.className = 'tooltip-row';
      const sw = document.createElement('span');
      sw.className = 'swatch';
      sw.style.background = runColour(this.store.runIndex(s.run));
      const name = document.createElement('span');
      name.className = 'tooltip-run';
      name.textContent = s.run === '.' ? '(run)' : s.run;
      const text = document.createElement('span');
      const wall = s.wall[i] as number;
      text.textContent = [
        `step ${formatStep(s.step[i] as number)}`,
        `value ${formatValue(finiteOrNull(s.value[i] as number) ?? NaN)}`,
        `smoothed ${formatValue(smooth ? finiteOrNull(smooth[i] as number) : null)}`,
        `wall ${formatClock(wall)}`,
        `relative ${formatDuration(wall - s.minWall)}`,
      ].join(' · ');
      row.append(sw, name, text);
      rows.push(row);
    }
    this.tooltip.replaceChildren(...rows);
    this.tooltip.hidden = rows.length === 0;
    // beside the cursor, on the side with room
    const w = this.tooltip.offsetWidth;
    const overW = u.over.clientWidth;
    this.tooltip.style.left = `${left + 12 + w > overW ? Math.max(0, left - 12 - w) : left + 12}px`;
    this.tooltip.style.top = `${Math.max(0, Math.min((u.cursor.top ?? 0) + 12, u.over.clientHeight - this.tooltip.offsetHeight))}px`;
  }

  private fileName(ext: string): string {
    return `${this.tag.replace(/[^\w.-]+/g, '_')}.${ext}`;
  }

  /** The chart as a person sees it (axes included), on the theme's background, with its tag. */
  private savePng(): void {
    const src = this.plot?.ctx.canvas;
    if (!src) return;
    const pad = 24;
    const c = document.createElement('canvas');
    c.width = src.width;
    c.height = src.height + pad;
    const g = c.getContext('2d');
    if (!g) return;
    g.fillStyle = cssVar('--vscode-editor-background', '#1e1e1e');
    g.fillRect(0, 0, c.width, c.height);
    g.fillStyle = cssVar('--vscode-foreground', '#cccccc');
    g.font = `${Math.round(12 * (window.devicePixelRatio || 1))}px ${cssVar('--vscode-font-family', 'sans-serif')}`;
    g.fillText(this.tag, 8, pad * 0.7);
    g.drawImage(src, 0, pad);
    this.save('png', this.fileName('png'), c.toDataURL('image/png').replace(/^data:image\/png;base64,/, ''));
  }

  /** Every point of every run of this tag (not the decimated ones), with its smoothed value. */
  private saveCsv(): void {
    const lines = ['run,step,wall_time,value,smoothed'];
    for (const s of this.series) {
      const smooth = new EmaSmoother().update(s.value, s.n, this.settings.smoothing);
      for (let i = 0; i < s.n; i++) {
        lines.push([csvField(s.run), s.step[i], s.wall[i], csvNumber(s.value[i] as number), csvNumber(smooth[i] as number)].join(','));
      }
    }
    this.save('csv', this.fileName('csv'), `${lines.join('\n')}\n`);
  }

  private renderLegend(store: ScalarStore, idx: number | null): void {
    const rows: HTMLElement[] = [];
    const shown = this.series.filter((s) => s.n > 0);
    shown.forEach((s, k) => {
      const row = document.createElement('span');
      row.className = 'legend-item';
      const sw = document.createElement('span');
      sw.className = 'swatch';
      sw.style.background = runColour(store.runIndex(s.run));
      let smoothV: number | null | undefined;
      let rawV: number | null | undefined;
      if (idx !== null && this.plot) {
        // with several runs the x values are merged: this run may have no point at exactly idx
        const j = nearestDefined(this.plot.data[2 + 2 * k], idx);
        rawV = j === null ? null : this.plot.data[1 + 2 * k]?.[j];
        smoothV = j === null ? null : this.plot.data[2 + 2 * k]?.[j];
      } else {
        [smoothV, rawV] = this.lastValues[k] ?? [null, null];
      }
      const label = document.createElement('span');
      label.textContent = `${s.run === '.' ? '(run)' : s.run}  ${formatValue(smoothV ?? null)}`;
      label.title = `smoothed ${formatValue(smoothV ?? null)} · raw ${formatValue(rawV ?? null)} · ${s.n.toLocaleString()} points`;
      row.append(sw, label);
      rows.push(row);
    });
    this.legendEl.replaceChildren(...rows);
  }
}

function smallButton(label: string, title: string, onClick: () => void): HTMLButtonElement {
  const b = document.createElement('button');
  b.className = 'chart-tool';
  b.textContent = label;
  b.title = title;
  b.addEventListener('click', onClick);
  return b;
}

/** Counts the non-null values of `ys`, stopping at `upTo`. */
function definedCount(ys: ArrayLike<number | null | undefined> | undefined, upTo: number): number {
  let n = 0;
  if (!ys) return 0;
  for (let i = 0; i < ys.length && n < upTo; i++) if (ys[i] != null) n++;
  return n;
}

/** The index in sorted `xs[0..n)` whose value is nearest `x`. */
function nearestIndex(xs: Float64Array, n: number, x: number): number {
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((xs[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && Math.abs((xs[lo - 1] as number) - x) <= Math.abs((xs[lo] as number) - x)) return lo - 1;
  return lo;
}

function formatStep(v: number): string {
  return Number.isInteger(v) ? v.toLocaleString('en-US') : formatValue(v);
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** A wall time (seconds since the epoch) as local HH:MM:SS. */
export function formatClock(seconds: number): string {
  const d = new Date(seconds * 1000);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** A wall-time tick: the clock, with the date when the axis spans days. */
function formatWallTick(seconds: number, span: number): string {
  const d = new Date(seconds * 1000);
  if (span >= 2 * 86400) return `${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  if (span >= 600) return `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  return formatClock(seconds);
}

/**
 * Log-scale ticks come at 1…9 × 10^k: label every one within a decade, only the powers of ten
 * when the axis spans more (their labels would otherwise pile on each other).
 */
export function logTickLabels(vals: number[]): string[] {
  const finite = vals.filter((v) => v > 0);
  const decades = finite.length ? Math.log10(Math.max(...finite)) - Math.log10(Math.min(...finite)) : 0;
  return vals.map((v) => {
    if (!(v > 0)) return '';
    const k = Math.round(Math.log10(v));
    const pow10 = Math.abs(v / 10 ** k - 1) < 1e-9;
    if (decades > 1 && !pow10) return '';
    if (pow10 && (k >= 4 || k <= -4)) return `1e${k}`;
    return formatValue(v);
  });
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csvNumber(v: number): string {
  return Number.isNaN(v) ? 'NaN' : String(v);
}

function nearestDefined(ys: ArrayLike<number | null | undefined> | undefined, idx: number): number | null {
  if (!ys) return null;
  for (let d = 0; d < 64; d++) {
    if (idx - d >= 0 && ys[idx - d] != null) return idx - d;
    if (idx + d < ys.length && ys[idx + d] != null) return idx + d;
  }
  return null;
}

function drawable(v: number, logY: boolean): number | null {
  if (!Number.isFinite(v)) return null;
  if (logY && v <= 0) return null;
  return v;
}

function finiteOrNull(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

export function formatValue(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
  return Number(v.toPrecision(4)).toString();
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(sec).padStart(2, '0')}s`;
  return `${sec}s`;
}
