// Keeps every event a worker sends under a size the broker takes in one WebSocket frame. A log of
// control characters grows sixfold as JSON (\u0001), and a tailer fed a hostile event file can
// make one scalars event of any size: such an event is split, never sent whole, because the
// broker closes a socket whose frame is over its limit and the worker would resend it forever.
import type { EventBody, ScalarPoint } from '../shared/protocol';

/** Well under the broker's 16 MiB frame limit, with room for the message envelope. */
export const MAX_EVENT_BYTES = 4 << 20;

/** A cheap upper bound of the event's JSON size in bytes (each UTF-16 unit at most 6 bytes). */
function bound(body: EventBody): number {
  switch (body.type) {
    case 'log':
      return 200 + 6 * body.data.length;
    case 'scalars':
      return 200 + body.points.reduce((n, p) => n + 120 + 6 * (p.run.length + p.tag.length), 0);
    case 'kernel':
      return body.msgType === 'stream' && typeof body.content.text === 'string' ? 300 + 6 * body.content.text.length : Infinity;
    default:
      return Infinity;
  }
}

const size = (body: EventBody) => Buffer.byteLength(JSON.stringify(body));

/** The event as one or more events, each under maxBytes serialised, in order. */
export function fitEvent(body: EventBody, maxBytes = MAX_EVENT_BYTES): EventBody[] {
  if (bound(body) <= maxBytes) return [body];
  const n = size(body);
  if (n <= maxBytes) return [body];
  if (body.type === 'log' && body.data.length > 1) {
    let mid = body.data.length >> 1;
    // Never between the two halves of a surrogate pair.
    const c = body.data.charCodeAt(mid - 1);
    if (c >= 0xd800 && c <= 0xdbff) mid++;
    return [
      ...fitEvent({ ...body, data: body.data.slice(0, mid) }, maxBytes),
      ...fitEvent({ ...body, data: body.data.slice(mid) }, maxBytes),
    ];
  }
  if (body.type === 'scalars' && body.points.length > 1) {
    const mid = body.points.length >> 1;
    const part = (points: ScalarPoint[]): EventBody => ({ type: 'scalars', points });
    return [...fitEvent(part(body.points.slice(0, mid)), maxBytes), ...fitEvent(part(body.points.slice(mid)), maxBytes)];
  }
  if (body.type === 'kernel') {
    const text = body.content.text;
    if (body.msgType === 'stream' && typeof text === 'string' && text.length > 1) {
      let mid = text.length >> 1;
      const c = text.charCodeAt(mid - 1);
      if (c >= 0xd800 && c <= 0xdbff) mid++;
      const part = (t: string): EventBody => ({ ...body, content: { ...body.content, text: t } });
      return [...fitEvent(part(text.slice(0, mid)), maxBytes), ...fitEvent(part(text.slice(mid)), maxBytes)];
    }
    // A rich output too large to send says so in its own cell.
    return [
      {
        type: 'kernel',
        requestId: body.requestId,
        msgType: 'stream',
        content: { name: 'stderr', text: `[hearth] a ${body.msgType} output of ${n} bytes was too large to send (the limit is ${maxBytes} bytes)\n` },
      },
    ];
  }
  return [{ type: 'notice', level: 'warning', message: `a ${body.type} event of ${n} bytes was too large to send and was dropped` }];
}
