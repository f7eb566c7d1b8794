// The job's output in a real terminal emulator, so ANSI colours and '\r' progress bars (tqdm)
// look as they would in a terminal.
import { Terminal, type ITheme } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { SearchAddon } from '@xterm/addon-search';
import { WebLinksAddon } from '@xterm/addon-web-links';
import '@xterm/xterm/css/xterm.css';
import { LogText, visibleLines } from '../shared/terminal-text';
import { CarriageReturns } from './carriage-return';
import { cssVar, onThemeChange } from './theme';

export interface LogViewHooks {
  openLink(url: string): void;
  copy(text: string): void;
  /** a remote traceback's file (relative to the job's folder) and 1-based line was clicked */
  openSource(jobId: string, path: string, line: number): void;
}

/**
 * A path in the job's folder on the worker (`…/jobs/<job id>/<relative path>`), as Python's
 * tracebacks (`File "…", line N`) and most tools (`…:N`) print it.
 */
const REMOTE_SOURCE = /(?:\/[^\s"':]*)?\/jobs\/(job_[A-Za-z0-9_-]+)\/([^\s"':,()]+)(?:", line |:)(\d+)/g;

/** The links of one row of text: where each starts (0-based), its text length and its target. */
export function remoteSourceLinks(text: string): Array<{ index: number; length: number; jobId: string; path: string; line: number }> {
  const out: Array<{ index: number; length: number; jobId: string; path: string; line: number }> = [];
  for (const m of text.matchAll(REMOTE_SOURCE)) {
    const rel = m[2] as string;
    if (rel.split('/').some((seg) => seg === '..' || seg === '')) continue;
    out.push({ index: m.index, length: m[0].length, jobId: m[1] as string, path: rel, line: Number(m[3]) });
  }
  return out;
}

const encoder = new TextEncoder();

export class LogView {
  readonly term: Terminal;
  private readonly fit = new FitAddon();
  private readonly search = new SearchAddon();
  private readonly returns = new CarriageReturns();
  /** The worker is a stranger: only its colours and \r reach xterm.js (no clear, no title, no OSC links or clipboard). */
  private readonly text = new LogText();
  /** UTF-8 bytes of program output written so far */
  bytes = 0;
  /** what the search box shows about matches ('3 of 12', 'No match'), for tests too */
  searchStatus = '';

  constructor(
    private readonly host: HTMLElement,
    toolbar: HTMLElement,
    scrollback: number,
    private readonly hooks: LogViewHooks,
  ) {
    this.term = new Terminal({
      scrollback,
      // '\n' alone moves to the next line's start as a terminal's tty would; '\r' still returns,
      // so progress bars redraw in place.
      convertEol: true,
      disableStdin: true,
      cursorBlink: false,
      cursorStyle: 'bar',
      cursorInactiveStyle: 'none',
      fontFamily: cssVar('--vscode-editor-font-family', 'monospace'),
      fontSize: Number.parseInt(cssVar('--vscode-editor-font-size', '13'), 10) || 13,
      // At line height 1 the DOM renderer's rows clip glyphs below the baseline in some fonts
      // and sizes (DejaVu Sans Mono at 14 px: '_' vanished, train_loss read "train loss").
      lineHeight: 1.2,
      theme: terminalTheme(),
      // the search addon's match count comes from its decorations
      allowProposedApi: true,
    });
    this.term.loadAddon(this.fit);
    this.term.loadAddon(this.search);
    this.term.loadAddon(new WebLinksAddon((_e, uri) => this.hooks.openLink(uri)));
    this.term.open(host);
    this.term.registerLinkProvider({
      provideLinks: (y, callback) => {
        // the whole logical line, as a long path may wrap onto the next row
        const buf = this.term.buffer.active;
        let first = y - 1;
        while (first > 0 && buf.getLine(first)?.isWrapped) first--;
        let last = y - 1;
        while (buf.getLine(last + 1)?.isWrapped) last++;
        const cols = this.term.cols;
        let text = '';
        for (let r = first; r <= last; r++) text += buf.getLine(r)?.translateToString(r === last) ?? '';
        // a string index as a (1-based) cell position; one cell per character is close enough
        // for paths, which are ASCII
        const at = (i: number) => ({ x: (i % cols) + 1, y: first + Math.floor(i / cols) + 1 });
        const links = remoteSourceLinks(text)
          .map((l) => ({
            range: { start: at(l.index), end: at(l.index + l.length - 1) },
            text: text.slice(l.index, l.index + l.length),
            decorations: { pointerCursor: true, underline: true },
            activate: () => this.hooks.openSource(l.jobId, l.path, l.line),
          }))
          .filter((l) => l.range.start.y <= y && l.range.end.y >= y);
        callback(links.length > 0 ? links : undefined);
      },
    });
    this.term.attachCustomKeyEventHandler((e) => {
      const mod = e.ctrlKey || e.metaKey;
      if (e.type === 'keydown' && mod && e.key.toLowerCase() === 'c' && this.term.hasSelection()) {
        this.copySelection();
        return false;
      }
      if (e.type === 'keydown' && mod && e.key.toLowerCase() === 'f') {
        this.searchInput.focus();
        this.searchInput.select();
        return false;
      }
      return true;
    });
    this.buildToolbar(toolbar);
    new ResizeObserver(() => this.resize()).observe(host);
    onThemeChange(() => {
      this.term.options.theme = terminalTheme();
    });
  }

  private searchInput!: HTMLInputElement;

  private buildToolbar(bar: HTMLElement): void {
    const input = document.createElement('input');
    input.type = 'search';
    input.placeholder = 'Search log';
    input.className = 'search';
    input.setAttribute('aria-label', 'Search log');
    this.searchInput = input;
    const count = document.createElement('span');
    count.className = 'search-count';
    count.setAttribute('aria-live', 'polite');
    const show = (text: string): void => {
      this.searchStatus = text;
      count.textContent = text;
    };
    this.search.onDidChangeResults(({ resultIndex, resultCount }) => {
      if (input.value === '') return show('');
      if (resultCount === 0) return show('No match');
      show(resultIndex < 0 ? `${resultCount}+ matches` : `${resultIndex + 1} of ${resultCount}`);
    });
    const opts = (incremental: boolean) => ({ incremental, decorations: SEARCH_DECORATIONS });
    const find = (back: boolean): void => {
      const term = input.value;
      if (term === '') return;
      const found = back ? this.search.findPrevious(term, opts(false)) : this.search.findNext(term, opts(false));
      input.classList.toggle('not-found', !found);
      if (!found) show('No match');
    };
    input.addEventListener('input', () => {
      if (input.value === '') {
        this.search.clearDecorations();
        this.term.clearSelection();
        input.classList.remove('not-found');
        show('');
        return;
      }
      const found = this.search.findNext(input.value, opts(true));
      input.classList.toggle('not-found', !found);
      if (!found) show('No match');
    });
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') find(e.shiftKey);
      if (e.key === 'Escape') {
        input.value = '';
        this.term.clearSelection();
        this.term.focus();
      }
    });
    bar.append(
      input,
      count,
      button('↑', 'Previous match (Shift+Enter)', () => find(true)),
      button('↓', 'Next match (Enter)', () => find(false)),
      button('Copy', 'Copy the selection, or the whole log when nothing is selected', () => this.copySelection(true)),
      button('Bottom', 'Scroll to the end', () => this.term.scrollToBottom()),
    );
  }

  private copySelection(allIfNone = false): void {
    let text = this.term.getSelection();
    if (text === '' && allIfNone) {
      this.term.selectAll();
      text = this.term.getSelection();
      this.term.clearSelection();
    }
    if (text !== '') this.hooks.copy(text);
  }

  write(data: string): void {
    this.bytes += encoder.encode(data).length;
    this.term.write(this.returns.transform(this.text.write(data), this.term.cols));
  }

  /** The log as text lines, rows that a long line wrapped onto joined back; for tests. */
  lines(): string[] {
    const buf = this.term.buffer.active;
    const out: string[] = [];
    for (let y = 0; y < buf.length; y++) {
      const line = buf.getLine(y);
      if (!line) continue;
      const text = line.translateToString(true);
      if (line.isWrapped && out.length > 0) out[out.length - 1] += text;
      else out.push(text);
    }
    return out;
  }

  /** A line from Hearth itself (notices), dimmed so it is not taken for program output. */
  writeNote(text: string, level: 'info' | 'warning' | 'error'): void {
    const colour = level === 'error' ? '31' : level === 'warning' ? '33' : '2';
    this.term.write(`${this.returns.flush()}\r\n\x1b[${colour}m[hearth] ${visibleLines(text).replace(/\n/g, '\r\n  ')}\x1b[0m\r\n`);
  }

  resize(): void {
    if (this.host.clientWidth === 0 || this.host.clientHeight === 0) return;
    try {
      this.fit.fit();
    } catch {
      // not laid out yet; the next resize fits it
    }
  }
}

const SEARCH_DECORATIONS = {
  matchBackground: '#515c6a',
  matchOverviewRuler: '#d186167e',
  activeMatchBackground: '#a8ac94',
  activeMatchColorOverviewRuler: '#a0a0a0',
};

function button(label: string, title: string, onClick: () => void): HTMLButtonElement {
  const b = document.createElement('button');
  b.textContent = label;
  b.title = title;
  b.addEventListener('click', onClick);
  return b;
}

function terminalTheme(): ITheme {
  const v = (name: string, fallback: string): string => cssVar(`--vscode-terminal-${name}`, fallback);
  return {
    background: cssVar('--vscode-terminal-background', cssVar('--vscode-panel-background', cssVar('--vscode-editor-background', '#1e1e1e'))),
    foreground: v('foreground', cssVar('--vscode-editor-foreground', '#cccccc')),
    cursor: v('foreground', '#cccccc'),
    selectionBackground: cssVar('--vscode-terminal-selectionBackground', cssVar('--vscode-editor-selectionBackground', '#264f78')),
    black: v('ansiBlack', '#000000'),
    red: v('ansiRed', '#cd3131'),
    green: v('ansiGreen', '#0dbc79'),
    yellow: v('ansiYellow', '#e5e510'),
    blue: v('ansiBlue', '#2472c8'),
    magenta: v('ansiMagenta', '#bc3fbc'),
    cyan: v('ansiCyan', '#11a8cd'),
    white: v('ansiWhite', '#e5e5e5'),
    brightBlack: v('ansiBrightBlack', '#666666'),
    brightRed: v('ansiBrightRed', '#f14c4c'),
    brightGreen: v('ansiBrightGreen', '#23d18b'),
    brightYellow: v('ansiBrightYellow', '#f5f543'),
    brightBlue: v('ansiBrightBlue', '#3b8eea'),
    brightMagenta: v('ansiBrightMagenta', '#d670d6'),
    brightCyan: v('ansiBrightCyan', '#29b8db'),
    brightWhite: v('ansiBrightWhite', '#e5e5e5'),
  };
}
