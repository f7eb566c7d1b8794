// What the tailer reads of files the job controls: bounded per pass, per file and per job, and
// stopped at once on abort; and what it sends: small events, short tags.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, openSync, closeSync, ftruncateSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import type { ScalarPoint } from '../../src/shared/protocol';
import { capTag, splitBySize, TAG_MARKER, TfEventsTailer, type ScalarDecoder } from '../../src/worker/tailer';

/** A decoder that counts the bytes it was given and finds nothing in them. */
function counting(): { decoder: () => ScalarDecoder; bytes: () => number } {
  let n = 0;
  return { decoder: () => ({ push: (c: Uint8Array) => ((n += c.length), []), errors: [] }), bytes: () => n };
}

function sparse(path: string, size: number): void {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, size);
  closeSync(fd);
}

describe('worker tfevents tailer: bounds', () => {
  let ws: string;
  beforeEach(() => {
    ws = mkdtempSync(join(os.tmpdir(), 'hearth-tail-bounds-'));
    mkdirSync(join(ws, 'runs', 'b'), { recursive: true });
  });
  afterEach(() => rmSync(ws, { recursive: true, force: true }));

  it('a sparse 8 GiB file: each pass reads at most its share, the file at most its cap, with one notice', async () => {
    sparse(join(ws, 'runs', 'events.out.tfevents.1.x'), 8 * 2 ** 30);
    const c = counting();
    const warnings: string[] = [];
    const t = new TfEventsTailer({ workspace: ws, logdir: 'runs', createDecoder: c.decoder, onPoints: () => undefined, onWarning: (w) => warnings.push(w), intervalMs: 1e9, maxFileBytes: 40 << 20, maxPassBytes: 16 << 20 });
    await t.pass();
    assert.equal(c.bytes(), 16 << 20);
    await t.pass();
    assert.equal(c.bytes(), 32 << 20);
    await t.stop(); // reads on, in passes, to the cap
    assert.equal(c.bytes(), 40 << 20);
    await t.pass();
    assert.equal(c.bytes(), 40 << 20);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /events\.out\.tfevents\.1\.x is larger than the 40 MiB this worker reads of one TensorBoard file/);
  });

  it('the job\'s cap covers all its files together', async () => {
    sparse(join(ws, 'runs', 'events.out.tfevents.1.a'), 30 << 20);
    sparse(join(ws, 'runs', 'b', 'events.out.tfevents.1.b'), 30 << 20);
    const c = counting();
    const warnings: string[] = [];
    const t = new TfEventsTailer({ workspace: ws, logdir: 'runs', createDecoder: c.decoder, onPoints: () => undefined, onWarning: (w) => warnings.push(w), intervalMs: 1e9, maxJobBytes: 48 << 20 });
    await t.stop();
    assert.equal(c.bytes(), 48 << 20);
    assert.equal(t.bytesRead, 48 << 20);
    assert.deepEqual(warnings.length, 1);
    assert.match(warnings[0]!, /passed the 48 MiB this worker reads of one job/);
  });

  it('abort ends the reading at once, the last pass included', async () => {
    sparse(join(ws, 'runs', 'events.out.tfevents.1.x'), 8 * 2 ** 30);
    const c = counting();
    const t = new TfEventsTailer({ workspace: ws, logdir: 'runs', createDecoder: c.decoder, onPoints: () => undefined, onWarning: () => undefined, intervalMs: 1e9, maxFileBytes: 64 * 2 ** 30 });
    const stopping = t.stop();
    await t.pass();
    t.abort();
    await stopping;
    const read = c.bytes();
    assert.ok(read < 8 * 2 ** 30, `read ${read}`);
    await t.pass();
    assert.equal(c.bytes(), read, 'nothing more after abort');
  });

  it('capTag: at most 512 UTF-8 bytes ending in the marker, never half a character', () => {
    assert.equal(capTag('loss'), 'loss');
    const long = 'é'.repeat(1000); // 2 bytes each
    const cut = capTag(long);
    assert.ok(Buffer.byteLength(cut) <= 512);
    assert.ok(cut.endsWith(TAG_MARKER));
    assert.ok(!cut.includes('\ufffd'));
    assert.equal(cut.slice(0, -1), 'é'.repeat(cut.length - 1));
    const emoji = capTag('😀'.repeat(300), 20);
    assert.equal(emoji, '😀'.repeat(4) + TAG_MARKER);
  });

  it('splitBySize: groups under the byte bound, order kept, nothing lost', () => {
    const points: ScalarPoint[] = Array.from({ length: 1000 }, (_, i) => ({ run: '.', tag: `${i}`.padStart(4, '0') + 'x'.repeat(500), step: i, wallTime: 1, value: i }));
    const groups = splitBySize(points, 64 << 10);
    assert.ok(groups.length > 1);
    for (const g of groups) assert.ok(Buffer.byteLength(JSON.stringify({ type: 'scalars', points: g })) <= 64 << 10);
    assert.deepEqual(groups.flat(), points);
  });
});
