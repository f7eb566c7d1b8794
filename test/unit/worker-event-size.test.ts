// No event the worker sends may outgrow the broker's frame limit: big logs and scalar batches are
// split in order, anything else too large becomes a notice.
import assert from 'node:assert/strict';
import type { EventBody } from '../../src/shared/protocol';
import { fitEvent } from '../../src/worker/event-size';

const bytes = (b: EventBody) => Buffer.byteLength(JSON.stringify(b));

describe('worker: event size', () => {
  it('keeps a small event whole and as it is', () => {
    const e: EventBody = { type: 'log', stream: 'stdout', data: 'hello\n' };
    assert.deepEqual(fitEvent(e, 1000), [e]);
  });

  it('splits a log of control characters (six bytes each as JSON) into pieces under the limit, in order', () => {
    const data = '\u0001'.repeat(50_000) + 'end😀' + 'x'.repeat(10_000);
    const parts = fitEvent({ type: 'log', stream: 'stderr', data }, 64 * 1024);
    assert.ok(parts.length > 1);
    for (const p of parts) assert.ok(bytes(p) <= 64 * 1024, `${bytes(p)} bytes`);
    assert.equal(parts.map((p) => (p.type === 'log' ? p.data : '')).join(''), data);
    for (const p of parts) assert.ok(p.type === 'log' && p.stream === 'stderr');
    // never a lone surrogate at a cut
    for (const p of parts) assert.ok(p.type === 'log' && !/^[\udc00-\udfff]|[\ud800-\udbff]$/.test(p.data));
  });

  it('splits 1 000 scalars with 4 000-byte tags into events under the limit, every point once, in order', () => {
    const points = Array.from({ length: 1000 }, (_, i) => ({ run: '.', tag: '\u0002'.repeat(4000) + i, step: i, wallTime: i, value: i }));
    const parts = fitEvent({ type: 'scalars', points }, 1 << 20);
    for (const p of parts) assert.ok(bytes(p) <= 1 << 20);
    assert.deepEqual(parts.flatMap((p) => (p.type === 'scalars' ? p.points : [])), points);
  });

  it('replaces what cannot be split by a notice that says so', () => {
    const [n] = fitEvent({ type: 'notice', level: 'info', message: '\u0003'.repeat(5000) }, 1000);
    assert.ok(n && n.type === 'notice' && /too large/.test(n.message));
  });
});
