// Reading a secret from a person or a pipe: never from the command line, where it would stay in
// the shell's history and show in `ps` to every user of the host.
import { UsageError } from './context';

/** Reads a line from the terminal without echoing it. */
export function promptHidden(question: string, input: NodeJS.ReadStream = process.stdin): Promise<string> {
  return new Promise((resolve, reject) => {
    process.stderr.write(question);
    let value = '';
    const done = (err?: Error) => {
      input.setRawMode(false);
      input.pause();
      input.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return done();
        if (ch === '\u0003') return done(new UsageError('cancelled'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else if (ch >= ' ') value += ch;
      }
    };
    input.setRawMode(true);
    input.setEncoding('utf8');
    input.on('data', onData);
    input.resume();
  });
}

/** All of stdin, less one trailing newline (what `echo` and most files end with). */
export async function readStdin(input: NodeJS.ReadableStream = process.stdin): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of input) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** A secret: typed at a hidden prompt on a terminal, else read from stdin. */
export async function readSecret(question: string): Promise<string> {
  const v = process.stdin.isTTY ? await promptHidden(question) : await readStdin();
  if (!v) throw new UsageError('no value given (type it at the prompt, or pipe it on stdin)');
  return v;
}
