// Help that a person can act on: every subcommand lists the global flags (--json, --broker,
// --token, --data-dir) with its own, and shows examples.
import type { Command } from 'commander';

const EXAMPLES: Record<string, string[]> = {
  up: ['hearth up', 'hearth up --port 7800 --data-dir /tmp/hearth', 'hearth down'],
  down: ['hearth down', 'hearth --data-dir /tmp/hearth down'],
  broker: ['hearth broker --port 7777 --host 0.0.0.0'],
  worker: ['hearth --broker http://broker:7777 worker --token-file ~/.hearth/worker-token --price 2.5'],
  gpus: ['hearth gpus', 'hearth gpus --json'],
  lease: ['hearth lease --gpu H100 --hours 2', 'hearth lease --count 2 --json'],
  leases: ['hearth leases', 'hearth leases --all --json'],
  renew: ['hearth renew lease_3fK9… --hours 1'],
  release: ['hearth release lease_3fK9…'],
  run: [
    'hearth run train.py',
    'hearth run src/train.py -- --epochs 3 --lr 0.01     # script arguments go after --',
    'hearth run train.py --lease lease_3fK9… --outputs "checkpoints/**" --env WANDB_MODE=offline',
    'hearth run train.py --workdir .                     # upload this folder, not the detected project',
    'hearth run analysis.ipynb --allow-errors',
    'hearth --json run train.py > job.json               # the job\'s output goes to stderr',
  ],
  logs: ['hearth logs job_3fK9…', 'hearth logs job_3fK9… --follow', 'hearth logs job_3fK9… --tail 50 -f'],
  jobs: ['hearth jobs', 'hearth jobs --status running,queued', 'hearth jobs --lease lease_3fK9… --limit 5 --json'],
  cancel: ['hearth cancel job_3fK9…'],
  scalars: ['hearth scalars job_3fK9…', 'hearth scalars job_3fK9… --json'],
  pull: ['hearth pull job_3fK9…', 'hearth pull job_3fK9… --dest weights/ --force'],
  'kernel start': ['hearth kernel start --dir .'],
  'kernel exec': ['hearth kernel exec job_3fK9… "import torch; torch.cuda.is_available()"', 'echo "print(1)" | hearth kernel exec job_3fK9… -'],
  'account create': ['hearth account create alice'],
  'account whoami': ['hearth account whoami --json'],
  'token create': ['hearth token create --worker --label gpu-box --expires 30d'],
  'token list': ['hearth token list'],
  'token revoke': ['hearth token revoke tok_3fK9…'],
};

function path(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Applies to every command under `program`, including ones registered by other modules. */
export function withGlobalHelp(program: Command): Command {
  const visit = (cmd: Command) => {
    cmd.configureHelp({ showGlobalOptions: true, sortSubcommands: false });
    const ex = EXAMPLES[path(cmd)];
    if (ex) cmd.addHelpText('after', `\nExamples:\n${ex.map((l) => `  $ ${l}`).join('\n')}\n`);
    for (const c of cmd.commands) visit(c);
  };
  for (const c of program.commands) visit(c);
  return program;
}
