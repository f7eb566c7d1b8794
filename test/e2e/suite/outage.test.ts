import * as assert from 'node:assert/strict';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import * as vscode from 'vscode';
import { CommandId } from '../../../src/extension/commands/command-ids';
import { command, hearth, waitFor } from './helpers';

/**
 * A TCP relay to the real broker that can stop answering: `hang()` keeps accepting connections
 * but never replies (a hung broker, or a network that black-holes it), `down()` refuses them.
 */
class Relay {
  private readonly sockets = new Set<Socket>();
  private mode: 'relay' | 'hang' = 'relay';
  private server: Server | undefined;
  url = '';

  constructor(private readonly target: URL) {}

  async start(): Promise<void> {
    const server = createServer((client) => {
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client));
      client.on('error', () => undefined);
      if (this.mode === 'hang') return;
      const upstream = tcpConnect(Number(this.target.port), this.target.hostname);
      this.sockets.add(upstream);
      upstream.on('close', () => this.sockets.delete(upstream));
      upstream.on('error', () => client.destroy());
      client.pipe(upstream).pipe(client);
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    assert.ok(addr && typeof addr === 'object');
    this.url = `http://127.0.0.1:${addr.port}`;
  }

  /** Open connections (kept alive by the client) are cut; new ones get no reply. */
  hang(): void {
    this.mode = 'hang';
    for (const s of this.sockets) s.destroy();
  }

  async down(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

export function defineOutageTests(): void {
  describe('a broker that is down or hung', () => {
    let relay: Relay;
    let token: string | undefined;
    let realUrl: string;

    let made: string | undefined;

    before(async () => {
      const api = await hearth();
      const client = (await api.client())!;
      token = client.token;
      realUrl = client.url;
      relay = new Relay(new URL(realUrl));
      await relay.start();
      // a hung request is given up after a second here (15 s by default)
      await vscode.workspace.getConfiguration('hearth').update('requestTimeoutSeconds', 1, vscode.ConfigurationTarget.Global);
      await command(api, CommandId.connect, { url: relay.url, token });
      if (!(await client.leases()).some((l) => l.status === 'active')) made = (await client.createLease({ count: 1, hours: 1 })).id;
      if ((await client.jobs()).length === 0) throw new Error('the runs tests ran a job before this suite');
    });

    after(async () => {
      const api = await hearth();
      await relay?.down();
      await command(api, CommandId.connect, { url: realUrl, token });
      // the device is free again for the suites after this one
      if (made) await (await api.client())!.releaseLease(made);
      const cfg = vscode.workspace.getConfiguration('hearth');
      await cfg.update('requestTimeoutSeconds', undefined, vscode.ConfigurationTarget.Global);
      await cfg.update('brokerUrl', undefined, vscode.ConfigurationTarget.Global);
      await waitFor('the real broker again', async () => ((await api.refresh()).connected ? true : undefined));
    });

    it('hung: says "broker unreachable — retrying" on the views and the status bar, keeps the last leases and runs (stale)', async () => {
      const api = await hearth();
      const before = await waitFor('the relayed broker', async () => {
        const s = await api.refresh();
        return s.connected && s.url === relay.url && s.leases.length > 0 ? s : undefined;
      });
      assert.equal(api.views().leases.message, undefined, 'no outage message while the broker answers');
      relay.hang();
      const snap = await api.refresh();
      assert.equal(snap.connected, false);
      assert.equal(snap.unreachable, true);
      assert.equal(snap.stale, true);
      assert.match(snap.error ?? '', /did not answer .* within 1 s/);
      assert.deepEqual(snap.leases.map((l) => l.id), before.leases.map((l) => l.id), 'the last known leases');
      assert.deepEqual(snap.jobs.map((j) => j.id), before.jobs.map((j) => j.id), 'the last known runs');
      assert.ok(api.leaseTree.getChildren().length > 0, 'the Leases view still lists them');
      assert.ok((await api.runTree.getChildren()).length > 0, 'the Runs view still lists them');
      assert.ok(api.gpuTree.getChildren().length > 0, 'the GPUs view still lists the offers');
      for (const [name, v] of Object.entries(api.views())) assert.match(v.message ?? '', /Broker unreachable — retrying\. Showing what it said at .* \(stale\)/, name);
      assert.match(api.statusBar().text ?? '', /broker unreachable — retrying/);
    });

    it('down: the same, and back to normal when it answers again', async () => {
      const api = await hearth();
      await relay.down();
      const snap = await api.refresh();
      assert.equal(snap.unreachable, true);
      assert.equal(snap.stale, true);
      assert.ok(snap.leases.length > 0);
      assert.match(api.statusBar().text ?? '', /broker unreachable — retrying/);
      await command(api, CommandId.connect, { url: realUrl, token });
      const back = await waitFor('the broker to answer', async () => ((await api.refresh()).connected ? api.snapshot() : undefined));
      assert.equal(back.stale, false);
      assert.equal(api.views().runs.message, undefined);
      assert.doesNotMatch(api.statusBar().text ?? '', /unreachable/);
    });
  });
}
