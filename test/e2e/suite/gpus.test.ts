import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { CommandId } from '../../../src/extension/commands/command-ids';
import type { OfferItem } from '../../../src/extension/views/gpu-tree';
import { command, hearth, waitFor } from './helpers';

export function defineGpuTests(): void {
  describe('GPUs view', () => {
    it('lists the local worker\'s offer, grouped by model', async () => {
      const api = await hearth();
      const client = await api.client();
      assert.ok(client, 'a broker client (the harness passes the local network\'s URL and token)');
      const offers = await client.offers();
      assert.ok(offers.length > 0, 'the local worker offers something');
      const snap = await waitFor('the extension to connect', async () => {
        const s = await api.refresh();
        return s.connected && s.offers.length > 0 ? s : undefined;
      });
      assert.equal(snap.url, client.url);

      const groups = api.gpuTree.getChildren();
      assert.ok(groups.length > 0, 'at least one GPU model group');
      const items = groups.flatMap((g) => (g.kind === 'model' ? api.gpuTree.getChildren(g) : []));
      for (const o of offers) {
        const item = items.find((i): i is OfferItem => i.kind === 'offer' && i.offer.workerId === o.workerId && i.offer.gpuModel === o.gpuModel);
        assert.ok(item, `an item for ${o.workerName} / ${o.gpuModel}`);
        assert.equal(item.label, o.workerName);
        assert.match(String(item.description), new RegExp(`${o.free}/${o.total} free`));
        assert.match(String(item.description), new RegExp(`${Math.round(o.reliability * 100)}%`));
        const group = groups.find((g) => g.label === o.gpuModel);
        assert.ok(group, `a group for ${o.gpuModel}`);
      }
    });

    it('reads at the default width: cr/h on prices, reliability labelled, account and broker shown, tooltips carry cut-off rows', async () => {
      const api = await hearth();
      const snap = await api.refresh();
      assert.ok(snap.me, 'signed in');
      const groups = api.gpuTree.getChildren();
      const items = groups.flatMap((g) => (g.kind === 'model' ? api.gpuTree.getChildren(g) : []));
      assert.ok(items.length > 0);
      for (const item of [...groups, ...items]) {
        const d = String(item.description);
        assert.match(d, /\d cr\/h/, `a price with its unit: ${d}`);
        const tip = (item.tooltip as vscode.MarkdownString).value.replace(/\\/g, '');
        for (const part of d.split(' · ')) assert.ok(tip.includes(part), `"${part}" of "${d}" is in the tooltip: ${tip}`);
      }
      for (const item of items) assert.match(String(item.description), /\d+% reliable/);
      const host = new URL(snap.url!).host;
      assert.match(String(api.views().gpus.description), new RegExp(`^${snap.me.name} @ ${host.replace(/\./g, '\\.')} · by `));
    });

    it('filters by model, minimum VRAM and price, and clears the filter', async () => {
      const api = await hearth();
      const all = api.gpuTree.getChildren().length;
      assert.ok(all > 0);
      await command(api, CommandId.filterGpus, { model: 'no-such-gpu-model' });
      assert.equal(api.gpuTree.getChildren().length, 0);
      const cheapest = Math.min(...api.snapshot().offers.map((o) => o.pricePerHour));
      await command(api, CommandId.filterGpus, { maxPricePerHour: cheapest });
      assert.ok(api.gpuTree.getChildren().length > 0, 'the cheapest offer passes a price cap equal to its price');
      await command(api, CommandId.filterGpus, { minVramMiB: Number.MAX_SAFE_INTEGER });
      assert.equal(api.gpuTree.getChildren().length, 0);
      await command(api, CommandId.clearFilter);
      assert.equal(api.gpuTree.getChildren().length, all);
    });

    it('sorts offers by the chosen key', async () => {
      const api = await hearth();
      for (const key of ['vram', 'reliability', 'price'] as const) {
        assert.equal(await command(api, CommandId.sortGpus, key), key);
        assert.equal(api.gpuTree.sort, key);
        const list = api.gpuTree.visibleOffers();
        const value = { price: (o: (typeof list)[0]) => o.pricePerHour, vram: (o: (typeof list)[0]) => -o.vramMiB, reliability: (o: (typeof list)[0]) => -o.reliability }[key];
        const available = list.filter((o) => o.online && o.free > 0);
        for (let i = 1; i < available.length; i++) assert.ok(value(available[i - 1]!) <= value(available[i]!), `sorted by ${key}`);
      }
    });
  });
}
