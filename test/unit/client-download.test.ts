// downloadVerified against a source that lies: a hostile broker (or store) that never stops sending.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BrokerClient } from '../../src/client/api';
import { downloadVerified, DownloadMismatchError } from '../../src/client/download';

describe('client: verified download', () => {
  let dir: string;
  let server: Server;
  let url: string;
  let sent = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hearth-download-'));
    // Answers every blob GET with an endless body: a download must stop at the blob's size.
    server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 7);
      const pump = () => {
        while (!res.destroyed && res.write(chunk)) sent += chunk.length;
        if (!res.destroyed) res.once('drain', pump);
      };
      res.on('close', () => undefined);
      pump();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('stops as soon as the source sends more than the blob\'s size, keeping nothing', async () => {
    const client = new BrokerClient({ url, token: 'hearth_test' });
    const dest = join(dir, 'model.pt');
    const size = 1024 * 1024;
    await assert.rejects(downloadVerified(client, 'a'.repeat(64), size, dest), (err: unknown) => err instanceof DownloadMismatchError && /ran past the blob's 1048576 bytes/.test(err.message));
    assert.ok(!existsSync(dest), 'nothing at the destination');
    assert.ok(!existsSync(`${dest}.part`), 'no partial file to resume from');
    // What the server pushed before the client hung up is bounded by socket buffers, not by the disk.
    assert.ok(sent < 64 * 1024 * 1024, `the server sent ${sent} bytes before the client stopped`);
  });
});
