// Messages between the run panel's host (src/extension/panels/run-panel.ts) and its webview
// (src/webview/run-panel.ts). Discriminated by `type`; each side parses what it receives. The
// webview speaks first ('ready', with the last seq it holds) and the host posts nothing before.
import { z } from 'zod';
import { Id, Job, JobEvent } from './protocol';

/**
 * Accepts exactly what `JobEvent.safeParse` accepts, but checks scalar batches by hand: zod takes
 * about a second for 800 000 points, which would dwarf the time to draw them. Other event kinds
 * are few and small, so they go through zod.
 */
export function isJobEvent(v: unknown): v is JobEvent {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as { seq?: unknown; ts?: unknown; body?: unknown };
  const body = e.body as { type?: unknown; points?: unknown } | null | undefined;
  if (typeof body !== 'object' || body === null || body.type !== 'scalars') return JobEvent.safeParse(v).success;
  if (typeof e.seq !== 'number' || !Number.isInteger(e.seq) || e.seq < 1) return false;
  if (typeof e.ts !== 'number' || Number.isNaN(e.ts)) return false;
  const pts = body.points;
  if (!Array.isArray(pts) || pts.length > 100_000) return false;
  for (const p of pts as unknown[]) {
    if (typeof p !== 'object' || p === null) return false;
    const q = p as Record<string, unknown>;
    if (typeof q.run !== 'string' || q.run.length > 4096 || typeof q.tag !== 'string' || q.tag.length > 4096) return false;
    if (typeof q.step !== 'number' || Number.isNaN(q.step)) return false;
    if (typeof q.wallTime !== 'number' || Number.isNaN(q.wallTime)) return false;
    const val = q.value;
    if (typeof val === 'number' ? Number.isNaN(val) : val !== 'NaN' && val !== 'Infinity' && val !== '-Infinity') return false;
  }
  return true;
}

export const XAxisMode = z.enum(['step', 'relative', 'wall']);
export type XAxisMode = z.infer<typeof XAxisMode>;

/** Settings the host passes on; the webview keeps what the person changes in its own state. */
export const PanelOptions = z.object({
  smoothing: z.number().min(0).max(0.999).default(0.6),
  xAxis: XAxisMode.default('step'),
  scrollback: z.number().int().min(1000).max(1_000_000).default(100_000),
});
export type PanelOptions = z.infer<typeof PanelOptions>;

export const ConnectionState = z.enum(['connected', 'reconnecting', 'ended']);
export type ConnectionState = z.infer<typeof ConnectionState>;

export const HostToWebview = z.discriminatedUnion('type', [
  /** first message after 'ready'; `job` is null when the broker could not be asked yet */
  z.object({ type: z.literal('init'), jobId: z.string(), job: Job.nullable(), options: PanelOptions }),
  /** events of the job's log in seq order, batched; the webview drops any seq it already holds */
  z.object({ type: z.literal('events'), events: z.array(z.custom<JobEvent>(isJobEvent, 'not a job event')) }),
  z.object({ type: z.literal('job'), job: Job }),
  z.object({ type: z.literal('connection'), state: ConnectionState, error: z.string().optional() }),
  /** artifacts of this job now in the workspace (paths relative to the job's pull folder) */
  z.object({ type: z.literal('pulled'), paths: z.array(z.string().max(4096)).max(100_000) }),
]);
export type HostToWebview = z.infer<typeof HostToWebview>;

/** What the webview has drawn, reported after draws (throttled) so tests can wait for it. */
export const PanelDrawState = z.object({
  /** UTF-8 bytes of log output written to the terminal */
  logBytes: z.number().int().min(0),
  /** points held and drawn per series, keyed `${run}|${tag}` */
  series: z.record(z.number().int().min(0)),
  /** highest event seq received */
  lastSeq: z.number().int().min(0),
  /** job status as the events tell it */
  status: z.string().optional(),
});
export type PanelDrawState = z.infer<typeof PanelDrawState>;

export const PanelAction = z.enum(['stop', 'pull', 'rerun']);
export type PanelAction = z.infer<typeof PanelAction>;

/** A path relative to a folder, with no way out of it. */
const PanelRelPath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => !p.startsWith('/') && !p.includes('\\') && p.split('/').every((seg) => seg !== '' && seg !== '..' && seg !== '.'), 'a relative path inside the folder');

export const WebviewToHost = z.discriminatedUnion('type', [
  /** the webview is listening; it holds every event up to `lastSeq` (0 or absent: none) */
  z.object({ type: z.literal('ready'), lastSeq: z.number().int().min(0).optional() }),
  PanelDrawState.extend({ type: z.literal('state') }),
  z.object({ type: z.literal('openLink'), url: z.string().max(8192) }),
  z.object({ type: z.literal('copy'), text: z.string().max(64 * 1024 * 1024) }),
  /** something went wrong inside the webview; the host writes it to the log */
  z.object({ type: z.literal('error'), message: z.string().max(100_000) }),
  /** the panel's buttons: Stop, Pull Weights, Re-run */
  z.object({ type: z.literal('action'), action: PanelAction }),
  /** an artifact link: open the pulled file (pulling it first when it is not here yet) */
  z.object({ type: z.literal('openArtifact'), path: PanelRelPath }),
  /** a remote traceback path: open the file of the job's local folder at that line */
  z.object({ type: z.literal('openSource'), jobId: z.string().max(200), path: PanelRelPath, line: z.number().int().min(1).max(10_000_000) }),
  /** a chart download: a PNG (base64) or CSV text, saved where the person picks */
  z.object({
    type: z.literal('save'),
    format: z.enum(['png', 'csv']),
    name: z.string().max(200),
    data: z.string().max(64 * 1024 * 1024),
  }),
]);
export type WebviewToHost = z.infer<typeof WebviewToHost>;

/** The key of a series in PanelDrawState.series. */
export const seriesKey = (run: string, tag: string): string => `${run}|${tag}`;

/** A run panel's tab title: `Run <id>` until the job is known, then `<entry> · <id>`. */
export function panelTitle(jobId: string, entry?: string): string {
  return entry === undefined ? `Run ${jobId}` : `${entry} · ${jobId}`;
}

/** The job id a panelTitle() names, if `title` is one. VS Code keeps a panel's title even when
 *  it restores the panel without the state its webview saved. */
export function jobIdInPanelTitle(title: string): string | undefined {
  const id = /(?:^Run | · )([^\s·]+)$/.exec(title)?.[1];
  return id !== undefined && Id.safeParse(id).success ? id : undefined;
}

/** What the webview keeps with vscode.setState, so the serializer can reopen the panel. */
export const PanelViewState = z.object({
  jobId: z.string(),
  lastSeq: z.number().int().min(0).optional(),
  smoothing: z.number().min(0).max(0.999).optional(),
  xAxis: XAxisMode.optional(),
  logY: z.boolean().optional(),
  filter: z.string().max(1000).optional(),
  collapsed: z.array(z.string().max(4096)).max(10_000).optional(),
  /** the log pane's share of the panel's width, set with the splitter */
  split: z.number().min(0.1).max(0.9).optional(),
});
export type PanelViewState = z.infer<typeof PanelViewState>;
