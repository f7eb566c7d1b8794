// What a job's environment holds. The provider's own environment is theirs (cloud keys, Hub
// tokens, SSH agents): a job gets only the few variables that describe the machine rather than
// the person (PATH, locale, time zone, terminal, where the CUDA libraries are), what the worker
// sets for it, what the renter passed in the job spec, and the renter's secrets.

/** Names copied from the worker's environment; anything else stays out. */
const PASS_THROUGH = new Set(['PATH', 'LANG', 'LANGUAGE', 'TZ', 'TERM', 'LD_LIBRARY_PATH']);
const PASS_THROUGH_PREFIXES = ['LC_'];

/** A job finds python3 and the usual tools even when the worker was started without a PATH. */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function isPassedThrough(name: string): boolean {
  return PASS_THROUGH.has(name) || PASS_THROUGH_PREFIXES.some((p) => name.startsWith(p));
}

export function jobEnv(o: {
  /** the worker's environment */
  workerEnv: NodeJS.ProcessEnv;
  /** what the renter passed (already validated by the protocol's schema) */
  specEnv: Record<string, string>;
  /** the renter's secrets, from the dispatch (the job's own --env wins over a secret of the same name) */
  secrets?: Record<string, string>;
  /** what the worker sets for this job (HEARTH_*, CUDA_VISIBLE_DEVICES, PYTHONUNBUFFERED, HOME…): wins over both */
  set: Record<string, string>;
}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(o.workerEnv)) if (v !== undefined && isPassedThrough(k)) env[k] = v;
  env.PATH ??= DEFAULT_PATH;
  // Output goes to a pipe, not a tty: tqdm and rich size their bars from these (else 80 or 10).
  env.COLUMNS = '120';
  env.LINES = '40';
  // The renter's own variables may override the machine's (their PATH, their locale)…
  for (const [k, v] of Object.entries(o.secrets ?? {})) env[k] = v;
  for (const [k, v] of Object.entries(o.specEnv)) env[k] = v;
  // …but not what identifies the job to itself and to the worker's process accounting.
  for (const [k, v] of Object.entries(o.set)) env[k] = v;
  return env;
}

/**
 * The worker's own environment minus Hearth's settings, for what the worker itself runs (asking
 * the interpreter where it lives): HEARTH_TOKEN in particular never goes to a child.
 */
export function inheritedEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!k.startsWith('HEARTH_')) out[k] = v;
  return out;
}
