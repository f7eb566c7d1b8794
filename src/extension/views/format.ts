// Small display helpers shared by the trees and the status bar (no vscode: unit-tested in Node).
import type { Balance, Job, Lease, Offer } from '../../shared/protocol';
import { visibleLines, visibleText } from '../../shared/terminal-text';

// What a worker named (itself, its GPUs, its software) and said (a job's reason), as the views
// show it: control, bidi and zero-width characters as escapes (terminal-text.ts), so a tree item,
// a notification or the status bar shows what is there and nothing else.
export function shownOffer(o: Offer): Offer {
  const s = o.stack;
  return {
    ...o,
    workerName: visibleText(o.workerName),
    gpuModel: visibleText(o.gpuModel),
    ...(s
      ? { stack: { ...s, python: visibleText(s.python), torch: s.torch && visibleText(s.torch), cuda: s.cuda && visibleText(s.cuda), ...(s.driver ? { driver: visibleText(s.driver) } : {}) } }
      : {}),
  };
}
export function shownLease(l: Lease): Lease {
  return { ...l, workerName: visibleText(l.workerName), gpuModel: visibleText(l.gpuModel) };
}
export function shownJob(j: Job): Job {
  return { ...j, entry: visibleText(j.entry), reason: j.reason === null ? null : visibleLines(j.reason) };
}

export function formatVram(mib: number): string {
  if (mib <= 0) return '—';
  const gib = mib / 1024;
  return gib >= 10 ? `${Math.round(gib)} GiB` : `${gib.toFixed(1).replace(/\.0$/, '')} GiB`;
}

/** "1h 05m", "4m 09s", "12s" — time left is read at a glance, so no more than two units. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m ${String(sec).padStart(2, '0')}s`;
  return `${sec}s`;
}

/** A broker on this machine (what `hearth up` starts), as opposed to one a group hosts. */
export function isLocalBroker(url: string | undefined): boolean {
  if (!url) return true;
  try {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    return host === 'localhost' || host === '::1' || /^(::ffff:)?127\./.test(host) || /^::ffff:7f[0-9a-f]{2}:/.test(host);
  } catch {
    return false;
  }
}

/** A price per device-hour with its unit: "2.50 cr/h". */
export function formatRate(pricePerHour: number): string {
  return `${formatCredits(pricePerHour)} cr/h`;
}

/** Reliability as a person reads it in a narrow row: "98% reliable". */
export function formatReliability(r: number): string {
  return `${Math.round(r * 100)}% reliable`;
}

/** A broker URL as short as it can be and still say where: "gpu.example.org", "127.0.0.1:7777". */
export function brokerHost(url: string | undefined): string {
  if (!url) return '';
  try {
    const u = new URL(url);
    return `${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return url;
  }
}

/** The tooltip of a row that may be cut off: its label and every part of its description, then details. */
export function rowTooltip(label: string, description: string, details: readonly string[]): string {
  return [`**${escapeMarkdown(label)}**`, '', ...description.split(' · ').map((p) => `- ${escapeMarkdown(p)}`), ...(details.length ? ['', ...details] : [])].join('\n');
}

/** Text shown as itself in a MarkdownString (train_loss_v2.py keeps its underscores). */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()#|<>~]/g, '\\$&');
}

/** The Leases view's description: "balance 65 cr · held 35 cr · earned 12 cr" (earnings only for a provider). */
export function balanceText(b: Balance | undefined): string {
  if (!b) return '';
  const parts = [`balance ${b.balance < 0 ? '-' : ''}${formatCredits(Math.abs(b.balance))} cr${b.overdraft === null ? ' (open credit)' : ''}`];
  if (b.held > 0) parts.push(`held ${formatCredits(b.held)} cr`);
  if (b.earnings !== 0) parts.push(`earned ${formatCredits(b.earnings)} cr`);
  return parts.join(' · ');
}

export function formatCredits(c: number): string {
  if (c === 0) return '0';
  return c >= 100 ? c.toFixed(0) : c >= 1 ? c.toFixed(2) : c.toFixed(3);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** Milliseconds until `expiresAt` (epoch milliseconds, as the broker sends times). */
export function msLeft(expiresAt: number, now = Date.now()): number {
  return Math.max(0, expiresAt - now);
}

/** Cost so far, carried forward from the broker's last metering at the lease's rate. */
export function costNow(lease: Lease, fetchedAt: number, now = Date.now()): number {
  if (lease.status !== 'active') return lease.cost;
  const extraSeconds = Math.max(0, Math.min(now, lease.expiresAt) - Math.max(fetchedAt, lease.createdAt)) / 1000;
  // The broker ends a capped lease at its cap: the estimate never shows more.
  return Math.min(lease.cost + (lease.count * lease.pricePerHour * extraSeconds) / 3600, lease.maxCost ?? Infinity);
}

// Escape sequences colour a terminal; in a text document they are noise.
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*(\x07|\x1b\\)/g;

/** What a terminal leaves on screen after `\r` progress bars: the last rewrite of each line. */
export function plainLog(text: string): string {
  return text
    .replace(ANSI, '')
    .split('\n')
    .map((line) => {
      const parts = line.replace(/\r+$/, '').split('\r');
      return parts[parts.length - 1] ?? '';
    })
    .join('\n');
}
