// JSON request bodies: size-limited by Fastify, refused when nested deeper than any message of the
// protocol needs, then parsed with Fastify's own prototype-poisoning-safe parser.
import type { FastifyInstance } from 'fastify';
import { HttpError } from './http-error';

/** Deeper than any protocol message (the deepest is about 6 levels); far below what costs anything. */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether a JSON text nests `[`/`{` deeper than `max`, ignoring brackets inside strings. One pass over the characters, nothing allocated: a 20 MB text of brackets costs
 * milliseconds here, where JSON.parse would build millions of nested arrays first.
 */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > max) return true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--;
  }
  return false;
}

export function registerJsonParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = body as string;
    // A signed webhook is checked against the bytes that were sent, not a re-serialisation.
    if (req.url === '/v1/ledger/webhook') (req as typeof req & { rawBody?: string }).rawBody = text;
    if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) {
      done(new HttpError(400, 'too_deep', `JSON body nested deeper than ${MAX_JSON_DEPTH} levels`), undefined);
      return;
    }
    parse(req, text, done);
  });
}
