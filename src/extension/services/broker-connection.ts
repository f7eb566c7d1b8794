import { statSync } from 'node:fs';
import * as vscode from 'vscode';
import { BrokerClient } from '../../client/api';
import { loadConfig, resolveDataDir, configPath } from '../../client/config';
import { type Config, normalizeUrl } from './config';
import type { Secrets } from './secrets';

/** Where the current broker URL and token came from; shown in the log and in Connect's prompt. */
export type ConnectionSource = 'settings' | 'environment' | 'cli-config' | 'default';

export interface ResolvedConnection {
  url: string;
  token: string | undefined;
  source: ConnectionSource;
}

// Set by Sign Out, cleared by Connect: the tokens of the environment and of the CLI's config.json
// are not used either, or signing out would change nothing for a person who ran `hearth up`.
const SIGNED_OUT = 'hearth.signedOut';

/**
 * Builds the BrokerClient from settings + SecretStorage, falling back to the environment
 * (HEARTH_BROKER_URL / HEARTH_TOKEN) and to the CLI's config.json, so a person who ran
 * `hearth up` is connected with no setup.
 */
export class BrokerConnection implements vscode.Disposable {
  private cached: { key: string; client: BrokerClient } | undefined;
  private readonly emitter = new vscode.EventEmitter<void>();
  private readonly subs: vscode.Disposable[] = [];
  private cliConfigMtime = 0;
  /** fires when the settings, the stored token or the CLI's config.json changed */
  readonly onDidChange = this.emitter.event;

  constructor(
    private readonly config: Config,
    private readonly secrets: Secrets,
    private readonly memento: vscode.Memento,
    private readonly log: vscode.LogOutputChannel,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.subs.push(
      config.onDidChange(() => this.changed()),
      secrets.onDidChange(() => this.changed()),
    );
  }

  private changed(): void {
    this.cached = undefined;
    this.emitter.fire();
  }

  /** The data dir the CLI uses, where `hearth up` writes config.json. */
  get dataDir(): string {
    return resolveDataDir(undefined, this.env);
  }

  /** Called on every poll: `hearth up` may have written config.json since the last one. */
  checkCliConfig(): void {
    let mtime = 0;
    try {
      mtime = statSync(configPath(this.dataDir)).mtimeMs;
    } catch {
      mtime = 0;
    }
    if (mtime !== this.cliConfigMtime) {
      this.cliConfigMtime = mtime;
      this.changed();
    }
  }

  async resolve(): Promise<ResolvedConnection> {
    const cfg = this.config.current;
    const envUrl = this.env.HEARTH_BROKER_URL ? normalizeUrl(this.env.HEARTH_BROKER_URL) : undefined;
    const signedOut = this.memento.get<boolean>(SIGNED_OUT) === true;
    const envToken = signedOut ? undefined : this.env.HEARTH_TOKEN || undefined;
    const cli = this.readCliConfig();
    const cliUrl = cli.brokerUrl ? normalizeUrl(cli.brokerUrl) : undefined;

    // A token for exactly this URL, from wherever it is known; SecretStorage first.
    const tokenFor = async (url: string): Promise<string | undefined> =>
      (await this.secrets.getToken(url)) ??
      (envUrl === url || (!envUrl && url === cfg.brokerUrl) ? envToken : undefined) ??
      (cliUrl === url ? cli.token : undefined);

    if (cfg.brokerUrlIsSet) return { url: cfg.brokerUrl, token: await tokenFor(cfg.brokerUrl), source: 'settings' };
    if (envUrl) return { url: envUrl, token: await tokenFor(envUrl), source: 'environment' };
    if (cliUrl) return { url: cliUrl, token: await tokenFor(cliUrl), source: 'cli-config' };
    return { url: cfg.brokerUrl, token: await tokenFor(cfg.brokerUrl), source: 'default' };
  }

  private readCliConfig(): { brokerUrl?: string | undefined; token?: string | undefined } {
    if (this.memento.get<boolean>(SIGNED_OUT)) return {};
    try {
      return loadConfig(this.dataDir);
    } catch (err) {
      this.log.warn(`ignoring the CLI config: ${err instanceof Error ? err.message : String(err)}`);
      return {};
    }
  }

  /** A client for the current broker; the same object until the settings or token change. */
  async client(): Promise<BrokerClient> {
    const r = await this.resolve();
    const timeoutMs = this.config.current.requestTimeoutSeconds * 1000;
    const key = `${r.url}\n${r.token ?? ''}\n${timeoutMs}`;
    if (this.cached?.key !== key) {
      this.cached = { key, client: new BrokerClient({ url: r.url, token: r.token, timeoutMs }) };
      this.log.info(`broker ${r.url} (from ${r.source}${r.token ? '' : ', no token'})`);
    }
    return this.cached.client;
  }

  /** Stores the token in SecretStorage and the URL in the user settings. */
  async signIn(url: string, token: string): Promise<void> {
    const u = normalizeUrl(url);
    await this.memento.update(SIGNED_OUT, undefined);
    await this.secrets.setToken(u, token);
    if (u !== this.config.current.brokerUrl || !this.config.current.brokerUrlIsSet) await this.config.setBrokerUrl(u);
    this.changed();
  }

  /** Forgets the stored token of the current broker and stops using the environment's and the CLI's. */
  async signOut(): Promise<string> {
    const r = await this.resolve();
    await this.secrets.deleteToken(r.url);
    await this.memento.update(SIGNED_OUT, true);
    this.changed();
    return r.url;
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
    this.emitter.dispose();
  }
}
