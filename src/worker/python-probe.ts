// Which Python a worker runs jobs with, and what it has: the versions a renter picks a worker by
// (Python, PyTorch, CUDA) and whether it can run notebooks (ipykernel and jupyter_client). A
// worker told no --python picks the first interpreter that can run notebooks.
import { execFile } from 'node:child_process';

import { PythonStack } from '../shared/protocol';

const PROBE = [
  'import importlib.util, json, sys',
  'has = lambda m: importlib.util.find_spec(m) is not None',
  'out = {"python": sys.version.split()[0], "torch": None, "cuda": None, "kernels": has("ipykernel") and has("jupyter_client")}',
  'try:',
  '    import torch',
  '    out["torch"] = torch.__version__',
  '    out["cuda"] = torch.version.cuda',
  'except Exception:',
  '    pass',
  'print(json.dumps(out))',
].join('\n');

/** Interpreters tried, in order, when the provider names none. */
export const CANDIDATES = ['python3', '/usr/bin/python3'];

export function probePython(python: string, env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<PythonStack | undefined> {
  return new Promise((resolve) => {
    execFile(python, ['-c', PROBE], { timeout: timeoutMs, env, maxBuffer: 1 << 16 }, (err, stdout) => {
      if (err) return resolve(undefined);
      try {
        const parsed = PythonStack.safeParse(JSON.parse(String(stdout).trim().split('\n').pop() ?? ''));
        resolve(parsed.success ? parsed.data : undefined);
      } catch {
        resolve(undefined);
      }
    });
  });
}

/**
 * The interpreter for jobs and what it has: the one the provider named, else the first candidate
 * that can run notebooks, else the first that runs at all.
 */
export async function pickPython(configured: string | undefined, env: NodeJS.ProcessEnv): Promise<{ python: string; stack: PythonStack | undefined }> {
  if (configured) return { python: configured, stack: await probePython(configured, env) };
  let first: { python: string; stack: PythonStack } | undefined;
  for (const python of CANDIDATES) {
    const stack = await probePython(python, env);
    if (!stack) continue;
    if (stack.kernels) return { python, stack };
    first ??= { python, stack };
  }
  return first ?? { python: 'python3', stack: undefined };
}

