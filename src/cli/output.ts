// How the CLI prints: tables for people, JSON for scripts, progress bars only on a terminal.
import { SingleBar } from 'cli-progress';
import { once } from 'node:events';
import { inertJson, visibleText } from '../shared/terminal-text';

/** SGR sequences (colour, bold, dim): `ESC [ … m`. */
// eslint-disable-next-line no-control-regex -- ESC is what an SGR sequence starts with
const SGR = /\x1b\[[0-9;:]*m/g;

/**
 * Whether colours go to this stream: a terminal, unless NO_COLOR is set (https://no-color.org);
 * FORCE_COLOR (Node's and chalk's convention) keeps them for a pipe, e.g. into `less -R`.
 */
export function colourOn(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR) return false;
  if (env.FORCE_COLOR && env.FORCE_COLOR !== '0') return true;
  return !!stream.isTTY;
}

/**
 * Writes a job's or kernel's text and waits for the stream to drain, so a fast job cannot fill
 * memory with its output. Its colours reach a terminal only: a pipe or a file gets the text.
 */
export async function write(stream: NodeJS.WriteStream, data: string): Promise<void> {
  if (!stream.write(colourOn(stream) ? data : data.replace(SGR, ''))) await once(stream, 'drain');
}

/** JSON for scripts; C1 controls (U+009B is a CSI to some terminals) and bidi overrides as \u escapes. */
export function printJson(data: unknown): void {
  process.stdout.write(inertJson(JSON.stringify(data, null, 2)) + '\n');
}

/** A table for a person; every cell may hold a worker's text, so its control characters show as escapes. */
export function table(rows: string[][], header: string[]): string {
  const all = [header, ...rows.map((r) => r.map(visibleText))];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** A byte progress bar on stderr when it is a terminal; nothing otherwise. */
export class ByteProgress {
  private bar: SingleBar | undefined;

  constructor(private readonly label: string) {}

  update(done: number, total: number, detail = ''): void {
    if (!process.stderr.isTTY || total <= 0) return;
    if (!this.bar) {
      this.bar = new SingleBar(
        {
          format: `${this.label} [{bar}] {percentage}% {doneText}/{totalText} {detail}`,
          stream: process.stderr,
          hideCursor: true,
          clearOnComplete: true,
          barsize: 30,
        },
      );
      this.bar.start(total, 0, { doneText: '0 B', totalText: formatBytes(total), detail });
    }
    this.bar.setTotal(total);
    this.bar.update(done, { doneText: formatBytes(done), totalText: formatBytes(total), detail });
  }

  /** Removes the bar, leaving the cursor at the start of an empty line. */
  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
