// A '\r' returns to the start of the terminal *row*, so a progress bar wider than the log pane
// (wrapped over two rows) would leave a new row behind at every update. This rewrites each bare
// '\r' into "erase the rows this line spans and return to its first row", so a rewritten line
// stays one line however narrow the pane, and xterm's reflow on resize keeps it whole.

// CSI and OSC sequences take no cells.
// eslint-disable-next-line no-control-regex
const ESCAPES = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]/g;

/** Cells a code point takes in xterm: 2 for East Asian wide and emoji, 0 for controls. */
function cellWidth(cp: number): number {
  if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return 0;
  if (cp < 0x1100) return 1;
  if (
    cp <= 0x115f ||
    (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}

export class CarriageReturns {
  /** cells written on the current line since its start (or its last rewrite) */
  private cells = 0;
  /** the last chunk ended in '\r': it is a bare return unless the next starts with '\n' */
  private pendingCr = false;

  /** `data` with each bare '\r' replaced for a terminal `cols` wide. */
  transform(data: string, cols: number): string {
    let out = '';
    let s = data;
    if (this.pendingCr) {
      this.pendingCr = false;
      out += s.startsWith('\n') ? '\r' : this.rewind(cols);
    }
    if (s.endsWith('\r')) {
      s = s.slice(0, -1);
      this.pendingCr = true;
    }
    if (!s.includes('\r')) {
      this.advance(s);
      return out + s;
    }
    const parts = s.split(/\r(?!\n)/);
    for (let i = 0; i < parts.length; i++) {
      if (i > 0) out += this.rewind(cols);
      const p = parts[i] as string;
      this.advance(p);
      out += p;
    }
    return out;
  }

  /** Something else wrote a whole line (a note): the next line starts fresh. */
  flush(): string {
    const out = this.pendingCr ? '\r' : '';
    this.pendingCr = false;
    this.cells = 0;
    return out;
  }

  private rewind(cols: number): string {
    // the cursor is on the row holding cell `cells - 1` (xterm waits to wrap after the last column)
    const up = this.cells > 0 && cols > 0 ? Math.floor((this.cells - 1) / cols) : 0;
    this.cells = 0;
    return `\x1b[2K${'\x1b[A\x1b[2K'.repeat(up)}\r`;
  }

  private advance(text: string): void {
    const nl = text.lastIndexOf('\n');
    if (nl >= 0) this.cells = 0;
    const tail = (nl >= 0 ? text.slice(nl + 1) : text).replace(ESCAPES, '');
    for (const ch of tail) {
      if (ch === '\t') this.cells += 8 - (this.cells % 8);
      else if (ch === '\b') this.cells = Math.max(0, this.cells - 1);
      else this.cells += cellWidth(ch.codePointAt(0) as number);
    }
  }
}
