// The run panel's webview: header, live log, scalar charts and GPU telemetry of one job. It
// holds every event it received (deduplicated by seq) and tells the host the last seq it has in
// 'ready', so the host sends only what is missing.
import {
  HostToWebview,
  PanelViewState,
  type ConnectionState,
  type PanelAction,
  type PanelDrawState,
  type WebviewToHost,
  type XAxisMode,
} from '../shared/panel-protocol';
import { kernelText } from '../shared/kernel-text';
import { isTerminal, type Artifact, type Job, type JobEvent, type JobStatus } from '../shared/protocol';
import { ScalarStore } from '../shared/scalar-store';
import { setupStatus, setupText } from '../shared/setup-text';
import { DEFAULT_SMOOTHING, clampSmoothing } from '../shared/smoothing';
import { visibleLines } from '../shared/terminal-text';
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
/** artifact paths the host says are pulled into the workspace */
const pulled = new Set<string>();
/** when the job started running: the broker's word, else the 'running' event's time */
let runningSince: number | undefined;
/** what the worker is doing before the job starts (installing its packages), if anything */
let setupPhase: string | undefined;
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
const actionsEl = el('span', 'actions');
const actionButtons: Record<PanelAction, HTMLButtonElement> = {
  stop: actionButton('Stop', 'Cancel the run on the worker', 'stop'),
  pull: actionButton('Pull Weights', 'Download the run’s artifacts into .hearth/runs/<job>/', 'pull'),
  rerun: actionButton('Re-run', 'Run the same file again from this workspace', 'rerun'),
};
actionsEl.append(actionButtons.stop, actionButtons.pull, actionButtons.rerun);
header.append(titleEl, entryEl, statusEl, exitEl, timeEl, connEl, actionsEl);

function actionButton(label: string, title: string, action: PanelAction): HTMLButtonElement {
  const b = el('button', `action action-${action}`, label);
  b.title = title;
  b.hidden = true;
  b.addEventListener('click', () => post({ type: 'action', action }));
  return b;
}

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
const NO_SCALARS = 'No scalars yet. Write TensorBoard event files under the job’s logdir to see them here.';
const emptyCharts = el('div', 'empty', NO_SCALARS);
chartsPane.append(chartBar, emptyCharts, chartsRoot);
// The log has the whole width until the run writes scalars; then a splitter divides the two.
const splitter = el('div', 'splitter');
splitter.setAttribute('role', 'separator');
splitter.setAttribute('aria-orientation', 'vertical');
splitter.title = 'Drag to share the width between the log and the charts';
main.classList.add('no-scalars');
main.append(logPane, splitter, chartsPane);
app.append(header, extras, telemetryEl, main);

// ---------- parts ----------

const settings = {
  smoothing: clampSmoothing(saved?.smoothing ?? DEFAULT_SMOOTHING),
  xAxis: (saved?.xAxis ?? 'step') as XAxisMode,
  logY: saved?.logY ?? false,
  filter: saved?.filter ?? '',
  collapsed: new Set(saved?.collapsed ?? []),
};
let split = saved?.split ?? 0.5;
const applySplit = (): void => main.style.setProperty('--split', `${(split * 100).toFixed(2)}%`);
applySplit();
splitter.tabIndex = 0;
splitter.addEventListener('keydown', (e) => {
  const step = e.key === 'ArrowLeft' ? -0.05 : e.key === 'ArrowRight' ? 0.05 : 0;
  if (step === 0) return;
  e.preventDefault();
  split = Math.min(0.9, Math.max(0.1, split + step));
  applySplit();
  persist();
});
splitter.addEventListener('pointerdown', (e) => {
  e.preventDefault();
  splitter.setPointerCapture(e.pointerId);
  const box = main.getBoundingClientRect();
  // where on the splitter it was grabbed, so it does not jump under the pointer
  const grab = e.clientX - splitter.getBoundingClientRect().left;
  const move = (ev: PointerEvent): void => {
    split = Math.min(0.9, Math.max(0.1, (ev.clientX - grab - box.left) / box.width));
    applySplit();
  };
  const up = (): void => {
    splitter.removeEventListener('pointermove', move);
    splitter.removeEventListener('pointerup', up);
    persist();
  };
  splitter.addEventListener('pointermove', move);
  splitter.addEventListener('pointerup', up);
});
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
    openSource: (job, path, line) => post({ type: 'openSource', jobId: job, path, line }),
  });
  return log;
}

/** puts the settings into the controls; set by buildChartControls */
let syncControls = (): void => {};
buildChartControls();
charts.onDrawn = () => requestState();
charts.onCollapsedChange = () => persist();
charts.onSave = (format, name, data) => post({ type: 'save', format, name, data });
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
    renderChartsState();
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

/** What the charts pane says when it has nothing to draw: no scalars, or a filter that hides all. */
function renderChartsState(): void {
  const f = settings.filter.trim();
  let invalid: string | undefined;
  try {
    new RegExp(f, 'i');
  } catch (err) {
    invalid = err instanceof Error ? err.message.replace(/^Invalid regular expression: /, '') : String(err);
  }
  const filterBox = chartBar.querySelector<HTMLInputElement>('input.filter');
  filterBox?.classList.toggle('invalid', invalid !== undefined);
  if (filterBox) filterBox.title = invalid ? `Not a valid regular expression (${invalid}): matching it as plain text` : 'Filter tags (regex)';
  const tags = store.byTag.size;
  const shown = charts.shownCount();
  let text = '';
  if (tags === 0) text = NO_SCALARS;
  else if (shown === 0) text = `No tag matches “${f}”${invalid ? ' (not a valid regular expression, so matched as plain text)' : ''} — ${tags} tag${tags === 1 ? '' : 's'} hidden.`;
  else if (invalid) text = `“${f}” is not a valid regular expression (${invalid}); matching it as plain text.`;
  emptyCharts.textContent = text;
  emptyCharts.hidden = text === '';
  emptyCharts.classList.toggle('error', invalid !== undefined);
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
        if (b.status === 'running' && runningSince === undefined) runningSince = e.ts;
        if (b.exitCode !== undefined) exitCode = b.exitCode;
        if (b.reason !== undefined) reason = b.reason === null ? null : visibleLines(b.reason);
        headerChanged = true;
        break;
      case 'artifact':
        artifacts.push(b.artifact);
        // the artifacts are what a person came for: show them
        extras.open = true;
        extrasChanged = true;
        break;
      case 'kernel': {
        // A notebook run's or kernel's outputs, as text (the notebook editor shows them rich).
        const t = kernelText(b);
        if (t) ensureLog().write(t.data);
        break;
      }
      case 'setup':
        // The worker installs the session's packages before it starts; pip's output comes as log.
        setupPhase = setupStatus(b);
        ensureLog().writeNote(setupText(b), 'info');
        headerChanged = true;
        break;
      case 'notice':
        notices.push({ level: b.level, message: visibleLines(b.message) });
        ensureLog().writeNote(b.message, b.level);
        extrasChanged = true;
        break;
    }
  }
  if (changedTags.size > 0) {
    main.classList.remove('no-scalars');
    charts.changed(changedTags);
    renderChartsState();
  }
  if (extrasChanged) renderExtras();
  if (headerChanged || extrasChanged) renderHeader();
  requestState();
}

function renderHeader(): void {
  titleEl.textContent = jobId;
  entryEl.textContent = job?.entry ?? '';
  const st = status ?? job?.status;
  // Until the job runs, a setup phase is what it is doing (its row still says queued).
  const shown = setupPhase && (st === undefined || st === 'queued') ? setupPhase : st;
  statusEl.textContent = shown ?? 'connecting';
  statusEl.className = `status status-${st ?? 'unknown'}`;
  const code = exitCode ?? job?.exitCode;
  exitEl.textContent = code === null || code === undefined ? '' : `exit ${code}`;
  exitEl.title = reason ?? job?.reason ?? '';
  const started = job?.startedAt ?? runningSince;
  // a job that is over but whose end time has not come from the broker yet shows no clock
  const end = job?.endedAt ?? (st && isTerminal(st) ? null : Date.now());
  timeEl.textContent = started && end !== null ? formatDuration(Math.max(0, end - started) / 1000) : '';
  timeEl.title = started ? `started ${new Date(started).toLocaleString()}` : '';
  const live = st !== undefined && !isTerminal(st);
  actionButtons.stop.hidden = !live;
  actionButtons.pull.hidden = !(st && isTerminal(st) && st !== 'cancelled') && artifacts.length === 0;
  actionButtons.rerun.hidden = (job?.entry ?? '') === '' || job?.kind === 'kernel';
  // 'ended' is normal once the job is over; with an error it means the broker could not be followed
  connEl.textContent = connection === 'reconnecting' ? 'reconnecting…' : connectionError ? `not following: ${connectionError}` : '';
  connEl.title = connectionError ?? '';
  connEl.hidden = connEl.textContent === '';
  document.title = `${jobId} ${st ?? ''}`;
}
setInterval(() => {
  const st = status ?? job?.status;
  if (st !== undefined && !isTerminal(st)) renderHeader();
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
      const link = el('a', 'path', a.path);
      link.href = '#';
      link.title = pulled.has(a.path) ? `Open ${a.path} (pulled)` : `Pull the run’s artifacts and open ${a.path}`;
      link.addEventListener('click', (e) => {
        e.preventDefault();
        post({ type: 'openArtifact', path: a.path });
      });
      li.append(link, el('span', 'size', formatBytes(a.size)));
      if (pulled.has(a.path)) li.append(el('span', 'pulled', 'pulled'));
      li.title = `sha256 ${a.sha256}`;
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
    split,
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
    case 'pulled':
      for (const p of msg.paths) pulled.add(p);
      renderExtras();
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
  /** what the log search says about matches */
  searchStatus: (): string => log?.searchStatus ?? '',
  logCols: (): number => log?.term.cols ?? 0,
  charts,
};

renderHeader();
// saved at once, so a window reload before the host has spoken still brings this panel back
persist();
// A fresh document holds nothing, whatever the saved state says: ask for everything.
post({ type: 'ready', lastSeq });
