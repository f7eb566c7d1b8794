// Text that came from a worker (its name, its GPUs' names, notices, reasons, a job's log), made
// safe to show in a terminal, a tree item or a notification. A terminal acts on control
// characters instead of printing them: ESC starts sequences that clear the screen, set the window
// title (OSC 0), write the clipboard (OSC 52) or make links (OSC 8); a C1 character (U+009B is a
// CSI) does the same in one byte; bidi overrides reorder what a person reads. A worker is a
// stranger, so these are shown as escapes (`\x1b`, `\u202e`) and never reach the terminal raw.
// A job's own log keeps what programs print on purpose: SGR colours and `\r` (progress bars).

/** The Unicode format characters that reorder (bidi) or hide (zero-width) text, and line separators. */
const FORMAT = '\\u061c\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u2064\\u2066-\\u2069\\ufeff';
/** C0 controls, DEL, C1 controls, and those format characters. */
const CONTROLS = new RegExp(`[\\x00-\\x1f\\x7f-\\x9f${FORMAT}]`, 'g');
const CONTROLS_BUT_LINES = new RegExp(`[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f${FORMAT}]`, 'g');
/** What JSON.stringify leaves raw of them (it escapes C0 itself). */
const RAW_IN_JSON = new RegExp(`[\\x7f-\\x9f${FORMAT}]`, 'g');

/** Whether a text holds a character a terminal acts on or one that reorders or hides text. */
export function hasControls(text: string): boolean {
  CONTROLS.lastIndex = 0;
  return CONTROLS.test(text);
}

/** JSON text with every such character as a `\uXXXX` escape: the same JSON, inert in a terminal. */
export function inertJson(json: string): string {
  return json.replace(RAW_IN_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * In a log: an SGR sequence (kept), or a control character a terminal acts on other than \t, \n
 * and \r (made visible). Unicode's format characters are the program's own text there (a joiner
 * in an emoji, right-to-left marks in Arabic): a terminal prints them.
 */
// eslint-disable-next-line no-control-regex
const LOG_TOKEN = /\x1b\[[0-9;:]{0,64}m|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/g;
/** The start of an SGR sequence cut at a chunk's end: held for the next chunk. */
// eslint-disable-next-line no-control-regex
const SGR_START = /\x1b(\[[0-9;:]{0,64})?$/;

/** One control character as an escape a person can read: `\x1b`, `\u202e`. */
export function escapeControl(c: string): string {
  const code = c.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * A one-line field from a worker (a name, a GPU model, a table cell): every control character,
 * newline and tab included, shown as an escape.
 */
export function visibleText(text: string): string {
  CONTROLS.lastIndex = 0;
  return CONTROLS.test(text) ? text.replace(CONTROLS, escapeControl) : text;
}

/** Text of several lines from a worker (a notice, a reason): as visibleText, keeping `\n` and tabs. */
export function visibleLines(text: string): string {
  CONTROLS_BUT_LINES.lastIndex = 0;
  return CONTROLS_BUT_LINES.test(text) ? text.replace(CONTROLS_BUT_LINES, escapeControl) : text;
}

/**
 * A worker's words (a notice, a reason) on a line of the program's own ("hearth: error: …"): as
 * visibleLines, and the lines after the first indented, so none of them reads as one of its own.
 */
export function workerWords(text: string): string {
  return visibleLines(text).replace(/\n(?!$)/g, '\n  ');
}

/** A log's text: SGR colours, `\r`, `\n` and tabs kept, every other control character shown as an escape. */
export function visibleLog(text: string): string {
  LOG_TOKEN.lastIndex = 0;
  return text.replace(LOG_TOKEN, (m) => (m.length > 1 ? m : escapeControl(m)));
}

/**
 * One stream of a log, chunk by chunk: an SGR sequence cut between two chunks is held back and
 * kept whole, rather than shown as a stray `\x1b[3` and a `1m`.
 */
export class LogText {
  private held = '';

  write(chunk: string): string {
    const text = this.held + chunk;
    const cut = SGR_START.exec(text);
    this.held = cut ? cut[0] : '';
    return visibleLog(cut ? text.slice(0, cut.index) : text);
  }

  /** What was held back, once nothing more comes (shown as the escapes it is). */
  end(): string {
    const rest = this.held;
    this.held = '';
    return visibleLog(rest);
  }
}
