// Hearth: Set Secret… (a secret of the renter's that their jobs and kernels get as an environment
// variable) and Push to Hugging Face Hub… (a run's artifacts and a model card, from the Runs view).
// The Hub token lives in VS Code's SecretStorage, one per Hub URL: the broker never returns a
// secret's value, so a secret named HF_TOKEN reaches jobs only.
import * as vscode from 'vscode';
import { checkHubToken, hubUrlFrom, HUB_REPO_RE, HubPushError, pushRun } from '../../client/hub-push';
import { isTerminal, SECRET_VALUE_MAX, SecretName } from '../../shared/protocol';
import type { HearthServices } from '../hearth-services';
import { jobIdOf, pickJob } from './args';
import { CommandId } from './command-ids';

/** The one SecretStorage key of these commands: the Hub token for a Hub URL. */
const hubTokenKey = (hubUrl: string) => `hearth.hubToken:${hubUrl}`;
const LAST_REPO = 'hearth.lastHubRepo';

/** Options for callers that know what they want (tests): a name, or a name and a value. */
export interface SetSecretOptions {
  name: string;
  value?: string;
}

export async function setSecret(s: HearthServices, arg?: unknown): Promise<string | undefined> {
  const opts: Partial<SetSecretOptions> = typeof arg === 'string' ? { name: arg } : typeof arg === 'object' && arg !== null ? (arg as SetSecretOptions) : {};
  const name =
    opts.name ||
    (await vscode.window.showInputBox({
          title: 'Hearth: Set Secret',
          prompt: 'Name: your jobs and kernels get it as this environment variable',
          placeHolder: 'HF_TOKEN',
          validateInput: (v) => (SecretName.safeParse(v).success ? undefined : (SecretName.safeParse(v).error?.issues[0]?.message ?? 'invalid name')),
        }));
  if (!name) return undefined;
  const valid = SecretName.safeParse(name);
  if (!valid.success) throw new Error(`${name}: ${valid.error.issues[0]?.message ?? 'invalid name'}`);
  const value = opts.value ?? (await vscode.window.showInputBox({
    title: `Hearth: Set Secret ${name}`,
    prompt: `Value of ${name} (stored encrypted by the broker, never shown again)`,
    password: true,
    ignoreFocusOut: true,
    validateInput: (v) => (!v ? 'a secret needs a value' : Buffer.byteLength(v) > SECRET_VALUE_MAX ? `at most ${SECRET_VALUE_MAX / 1024} KiB` : undefined),
  }));
  if (!value) return undefined;
  const client = await s.getClient();
  await client.setSecret(name, value);
  void vscode.window.showInformationMessage(`Hearth: secret ${name} set; your jobs and kernels get it as $${name}.`);
  return name;
}

/** Options for callers that know what they want (tests): anything not given is asked or looked up. */
export interface PushOptions {
  jobId?: string;
  repo?: string;
  private?: boolean;
  /** used instead of the stored one (and not stored) */
  hubToken?: string;
}

export async function pushToHub(s: HearthServices, arg?: unknown): Promise<string | undefined> {
  const opts: PushOptions = typeof arg === 'object' && arg !== null && 'repo' in arg ? (arg as PushOptions) : {};
  const client = await s.getClient();
  const jobId = opts.jobId ?? jobIdOf(arg) ?? (await pickJob((await client.jobs()).filter((j) => isTerminal(j.status) && j.kind === 'job'), 'Push which run to the Hugging Face Hub?'));
  if (!jobId) return undefined;
  const hubUrl = hubUrlFrom(undefined);
  const last = s.context.globalState.get<string>(LAST_REPO);
  const repo =
    opts.repo ??
    (await vscode.window.showInputBox({
      title: 'Push to Hugging Face Hub',
      prompt: `Repository on ${hubUrl} (created when missing)`,
      placeHolder: 'your-name/your-model',
      value: last,
      validateInput: (v) => (HUB_REPO_RE.test(v) ? undefined : 'OWNER/NAME, e.g. your-name/your-model'),
    }));
  if (!repo) return undefined;
  let visibility = opts.private;
  if (visibility === undefined) {
    const pick = await vscode.window.showQuickPick(
      [
        { label: 'Public', priv: false },
        { label: 'Private', priv: true },
      ],
      { title: 'If the repository is new, create it', placeHolder: 'Public or private?' },
    );
    if (!pick) return undefined;
    visibility = pick.priv;
  }
  let token = opts.hubToken ?? (await s.context.secrets.get(hubTokenKey(hubUrl)));
  let fresh = false;
  if (!token) {
    token = await vscode.window.showInputBox({
      title: 'Hugging Face token',
      prompt: `A token with write access for ${hubUrl} (kept in VS Code's secret storage)`,
      password: true,
      ignoreFocusOut: true,
      validateInput: (v) => {
        try {
          checkHubToken(v);
          return undefined;
        } catch (err) {
          return (err as Error).message;
        }
      },
    });
    if (!token) return undefined;
    fresh = true;
  }
  const hubToken = token;
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Pushing ${jobId} to ${repo}`, cancellable: true },
    async (progress, cancel) => {
      const abort = new AbortController();
      cancel.onCancellationRequested(() => abort.abort());
      try {
        return await pushRun(client, { jobId, repo, hubToken, hubUrl, private: visibility, signal: abort.signal, onProgress: (message) => progress.report({ message }) });
      } catch (err) {
        // A refused token is forgotten, so the next push asks for a good one.
        if (err instanceof HubPushError && /refused the token/.test(err.message)) await s.context.secrets.delete(hubTokenKey(hubUrl));
        throw err;
      }
    },
  );
  if (fresh) await s.context.secrets.store(hubTokenKey(hubUrl), hubToken);
  await s.context.globalState.update(LAST_REPO, repo);
  s.log.info(`pushed ${jobId} to ${result.repoUrl}: ${result.files.join(', ')}`);
  void vscode.window.showInformationMessage(`Hearth: pushed ${result.files.length} file(s) to ${repo}.`, 'Open').then((c) => {
    if (c === 'Open') void vscode.env.openExternal(vscode.Uri.parse(result.repoUrl));
  });
  return result.commitUrl ?? result.repoUrl;
}

export function secretHubCommandHandlers(s: HearthServices): Record<string, (...args: unknown[]) => unknown> {
  return {
    [CommandId.setSecret]: (arg?: unknown) => setSecret(s, arg),
    [CommandId.pushToHub]: (arg?: unknown) => pushToHub(s, arg),
  };
}
