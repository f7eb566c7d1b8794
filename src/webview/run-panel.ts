// The run panel's webview: header, live log, scalar charts and GPU telemetry of one job. It
// holds every event it received (deduplicated by seq) and tells the host the last seq it has in
// 'ready', so the host sends only what is missing.
import {
  HostToWebview,
  PanelViewState,
  type ConnectionState,
  type PanelDrawState,
  type WebviewToHost,
  type XAxisMode,
} from '../shared/panel-protocol';
import { kernelText } from '../shared/kernel-text';
import { isTerminal, type Artifact, type Job, type JobEvent, type JobStatus } from '../shared/protocol';
import { ScalarStore } from '../shared/scalar-store';
import { DEFAULT_SMOOTHING, clampSmoothing } from '../shared/smoothing';
import { LogView } from './log-view';
import { ScalarCharts, formatDuration } from './scalar-charts';
import { TelemetryView } from './telemetry-view';
import { onThemeChange } from './theme';
import { getVsCodeApi } from './vscode-api';

const api = getVsCodeApi();
const post = (msg: WebviewToHost): void => api.postMessage(msg);

const savedParse = PanelViewState.safeParse(api.getState());
const saved = savedParse.success ? savedParse.data : undefined;
let jobId = document.body.dataset.jobId ?? saved?.jobId ?? '';
let lastSeq = 0;
let status: JobStatus | undefined;
let job: Job | null = null;
let exitCode: number | null | undefined;
let reason: string | null | undefined;
let connection: ConnectionState = 'connected';
let connectionError: string | undefined;
const notices: Array<{ level: 'info' | 'warning' | 'error'; message: string }> = [];
const artifacts: Artifact[] = [];
let options = { scrollback: 100_000 };

// ---------- layout ----------

const el = <K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

const app = document.getElementById('app') ?? document.body.appendChild(el('div'));
app.id = 'app';
const header = el('header', 'header');
const titleEl = el('span', 'job-id');
const entryEl = el('span', 'entry');
const statusEl = el('span', 'status');
const exitEl = el('span', 'exit');
const timeEl = el('span', 'elapsed');
const connEl = el('span', 'connection');
header.append(titleEl, entryEl, statusEl, exitEl, timeEl, connEl);

const extras = el('details', 'extras');
extras.hidden = true;
const extrasSummary = el('summary');
const noticeList = el('ul', 'notices');
const artifactList = el('ul', 'artifacts');
extras.append(extrasSummary, noticeList, artifactList);

const telemetryEl = el('div', 'telemetry');
telemetryEl.hidden = true;

const main = el('main', 'main');
const logPane = el('section', 'pane log-pane');
const logBar = el('div', 'toolbar');
logBar.append(el('span', 'pane-title', 'Log'));
const termHost = el('div', 'terminal-host');
logPane.append(logBar, termHost);

const chartsPane = el('section', 'pane charts-pane');
const chartBar = el('div', 'toolbar');
const chartsRoot = el('div', 'chart-groups');
const emptyCharts = el('div', 'empty', 'No scalars yet. Write TensorBoard event files under the job’s logdir to see them here.');
chartsPane.append(chartBar, emptyCharts, chartsRoot);
main.append(logPane, chartsPane);
app.append(header, extras, telemetryEl, main);

// ---------- parts ----------

const settings = {
  smoothing: clampSmoothing(saved?.smoothing ?? DEFAULT_SMOOTHING),
  xAxis: (saved?.xAxis ?? 'step') as XAxisMode,
  logY: saved?.logY ?? false,
  filter: saved?.filter ?? '',
  collapsed: new Set(saved?.collapsed ?? []),
};
const store = new ScalarStore();
const charts = new ScalarCharts(chartsRoot, store, settings);
let log: LogView | undefined;
const telemetry = new TelemetryView(telemetryEl);

function ensureLog(): LogView {
  log ??= new LogView(termHost, logBar, options.scrollback, {
    openLink: (url) => post({ type: 'openLink', url }),
    copy: (text) => {
      post({ type: 'copy', text });
    },
  });
  return log;
}

/** puts the settings into the controls; set by buildChartControls */
let syncControls = (): void => {};
buildChartControls();
charts.onDrawn = () => requestState();
charts.onCollapsedChange = () => persist();
onThemeChange(() => charts.rebuildAll());

function buildChartControls(): void {
  chartBar.append(el('span', 'pane-title', 'Scalars'));
  const filter = el('input', 'filter');
  filter.type = 'search';
  filter.placeholder = 'Filter tags (regex)';
  filter.setAttribute('aria-label', 'Filter tags');
  filter.value = settings.filter;
  filter.addEventListener('input', () => {
    settings.filter = filter.value;
    charts.update(false);
    persist();
  });

  const smoothLabel = el('label', 'smoothing');
  smoothLabel.append('Smoothing ');
  const slider = el('input');
  slider.type = 'range';
  slider.min = '0';
  slider.max = '0.999';
  slider.step = '0.001';
  slider.value = String(settings.smoothing);
  slider.setAttribute('aria-label', 'Smoothing');
  const smoothValue = el('span', 'smoothing-value', settings.smoothing.toFixed(3));
  slider.addEventListener('input', () => {
    settings.smoothing = clampSmoothing(Number(slider.value));
    smoothValue.textContent = settings.smoothing.toFixed(3);
    charts.update(false);
    persist();
  });
  smoothLabel.append(slider, smoothValue);

  const axis = el('select', 'x-axis');
  axis.setAttribute('aria-label', 'Horizontal axis');
  for (const [v, label] of [
    ['step', 'Step'],
    ['relative', 'Relative'],
    ['wall', 'Wall'],
  ] as const) {
    const o = el('option', undefined, label);
    o.value = v;
    axis.append(o);
  }
  axis.value = settings.xAxis;
  axis.addEventListener('change', () => {
    settings.xAxis = axis.value as XAxisMode;
    charts.update(true);
    persist();
  });

  const logLabel = el('label', 'log-y');
  const logBox = el('input');
  logBox.type = 'checkbox';
  logBox.checked = settings.logY;
  logBox.addEventListener('change', () => {
    settings.logY = logBox.checked;
    charts.update(true);
    persist();
  });
  logLabel.append(logBox, ' Log scale');
  chartBar.append(filter, smoothLabel, axis, logLabel);
  syncControls = () => {
    slider.value = String(settings.smoothing);
    smoothValue.textContent = settings.smoothing.toFixed(3);
    axis.value = settings.xAxis;
    logBox.checked = settings.logY;
    filter.value = settings.filter;
  };
}

// Ctrl/Cmd+F searches the log wherever the focus is in the panel.
document.addEventListener('keydown', (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'f') {
    const search = logBar.querySelector<HTMLInputElement>('input.search');
    if (search) {
      e.preventDefault();
      search.focus();
      search.select();
    }
  }
});

// ---------- events ----------

function applyEvents(events: readonly JobEvent[]): void {
  const changedTags = new Set<string>();
  let extrasChanged = false;
  let headerChanged = false;
  for (const e of events) {
    // the host resends from the seq we asked for, and a reconnect may overlap: keep each once
    if (e.seq <= lastSeq) continue;
    lastSeq = e.seq;
    const b = e.body;
    switch (b.type) {
      case 'log':
        ensureLog().write(b.data);
        break;
      case 'scalars':
        for (const t of store.add(b.points)) changedTags.add(t);
        break;
      case 'telemetry':
        telemetry.add(b.gpus);
        break;
      case 'status':
        status = b.status;
        if (b.exitCode !== undefined) exitCode = b.exitCode;
        if (b.reason !== undefined) reason = b.reason;
        headerChanged = true;
        break;
      case 'artifact':
        artifacts.push(b.artifact);
        extrasChanged = true;
        break;
      case 'kernel': {
        // A notebook run's or kernel's outputs, as text (the notebook editor shows them rich).
        const t = kernelText(b);
        if (t) ensureLog().write(t.data);
        break;
      }
      case 'notice':
        notices.push({ level: b.level, message: b.message });
        ensureLog().writeNote(b.message, b.level);
        extrasChanged = true;
        break;
    }
  }
  if (changedTags.size > 0) {
    emptyCharts.hidden = true;
    charts.changed(changedTags);
  }
  if (extrasChanged) renderExtras();
  if (headerChanged) renderHeader();
  requestState();
}

function renderHeader(): void {
  titleEl.textContent = jobId;
  entryEl.textContent = job?.entry ?? '';
  const st = status ?? job?.status;
  statusEl.textContent = st ?? 'connecting';
  statusEl.className = `status status-${st ?? 'unknown'}`;
  const code = exitCode ?? job?.exitCode;
  exitEl.textContent = code === null || code === undefined ? '' : `exit ${code}`;
  exitEl.title = reason ?? job?.reason ?? '';
  const started = job?.startedAt;
  // a job that is over but whose end time has not come from the broker yet shows no clock
  const end = job?.endedAt ?? (st && isTerminal(st) ? null : Date.now());
  timeEl.textContent = started && end !== null ? formatDuration((end - started) / 1000) : '';
  // 'ended' is normal once the job is over; with an error it means the broker could not be followed
  connEl.textContent = connection === 'reconnecting' ? 'reconnecting…' : connectionError ? `not following: ${connectionError}` : '';
  connEl.title = connectionError ?? '';
  connEl.hidden = connEl.textContent === '';
  document.title = `${jobId} ${st ?? ''}`;
}
setInterval(() => {
  const st = status ?? job?.status;
  if (st === 'running') renderHeader();
}, 1000);

function renderExtras(): void {
  extras.hidden = notices.length === 0 && artifacts.length === 0;
  const parts: string[] = [];
  if (notices.length) parts.push(`${notices.length} notice${notices.length === 1 ? '' : 's'}`);
  if (artifacts.length) parts.push(`${artifacts.length} artifact${artifacts.length === 1 ? '' : 's'}`);
  extrasSummary.textContent = parts.join(' · ');
  noticeList.replaceChildren(
    ...notices.map((n) => {
      const li = el('li', `notice notice-${n.level}`, n.message);
      return li;
    }),
  );
  artifactList.replaceChildren(
    ...artifacts.map((a) => {
      const li = el('li', 'artifact');
      li.append(el('span', 'path', a.path), el('span', 'size', formatBytes(a.size)));
      li.title = a.sha256;
      return li;
    }),
  );
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

// ---------- state for the host and for a reload ----------

let stateTimer: ReturnType<typeof setTimeout> | undefined;
let lastStateAt = -Infinity;
/** Posts what is drawn, at most every 250 ms, and always after the last change. */
function requestState(): void {
  if (stateTimer !== undefined) return;
  const wait = Math.max(0, lastStateAt + 250 - performance.now());
  stateTimer = setTimeout(() => {
    stateTimer = undefined;
    lastStateAt = performance.now();
    post({ type: 'state', ...drawState() });
    persist();
  }, wait);
}

function drawState(): PanelDrawState {
  return { logBytes: log?.bytes ?? 0, series: { ...charts.stats.drawn }, lastSeq, status: status ?? job?.status };
}

function persist(): void {
  if (!jobId) return;
  api.setState({
    jobId,
    lastSeq,
    smoothing: settings.smoothing,
    xAxis: settings.xAxis,
    logY: settings.logY,
    filter: settings.filter,
    collapsed: [...settings.collapsed],
  });
}

// ---------- messages ----------

/** time spent taking in messages (checking and storing), for the benchmark */
const ingest = { messages: 0, parseMs: 0, applyMs: 0 };

window.addEventListener('message', (e: MessageEvent<unknown>) => {
  const t0 = performance.now();
  const parsed = HostToWebview.safeParse(e.data);
  const t1 = performance.now();
  ingest.messages++;
  ingest.parseMs += t1 - t0;
  try {
    onMessage(parsed);
  } finally {
    ingest.applyMs += performance.now() - t1;
  }
});

function onMessage(parsed: ReturnType<typeof HostToWebview.safeParse>): void {
  if (!parsed.success) {
    post({ type: 'error', message: `bad message from host: ${parsed.error.issues[0]?.message ?? 'invalid'}` });
    return;
  }
  const msg = parsed.data;
  switch (msg.type) {
    case 'init':
      jobId = msg.jobId;
      job = msg.job;
      options = { scrollback: msg.options.scrollback };
      // the host's defaults count only until the person has chosen their own
      if (!saved && (settings.smoothing !== msg.options.smoothing || settings.xAxis !== msg.options.xAxis)) {
        settings.smoothing = msg.options.smoothing;
        settings.xAxis = msg.options.xAxis;
        syncControls();
        charts.update(true);
      }
      ensureLog();
      renderHeader();
      persist();
      break;
    case 'events':
      applyEvents(msg.events);
      break;
    case 'job':
      job = msg.job;
      // the broker's view is the latest word (e.g. 'lost' without an event from the worker)
      status = msg.job.status;
      if (msg.job.exitCode !== null) exitCode = msg.job.exitCode;
      renderHeader();
      break;
    case 'connection':
      connection = msg.state;
      connectionError = msg.error;
      renderHeader();
      break;
  }
}

window.addEventListener('error', (e) => post({ type: 'error', message: `${e.message} (${e.filename}:${e.lineno})` }));
window.addEventListener('unhandledrejection', (e) => post({ type: 'error', message: String(e.reason) }));

// For tests and the benchmark harness: what the panel holds and how long its draws take.
(window as unknown as { __hearthPanel: unknown }).__hearthPanel = {
  stats: charts.stats,
  ingest,
  store,
  state: drawState,
  /** the log as xterm.js holds it (written lines only: xterm parses writes a little later) */
  logLines: (): string[] => log?.lines() ?? [],
};

renderHeader();
// saved at once, so a window reload before the host has spoken still brings this panel back
persist();
// A fresh document holds nothing, whatever the saved state says: ask for everything.
post({ type: 'ready', lastSeq });
