// Reasons and notices the worker reports reach the renter. Error texts from Node name absolute
// paths ("ENOTDIR: …, mkdir '/var/lib/hearth/work/jobs/job_x/a/b'") that tell a stranger the
// provider's layout and user names: they are shown relative to the job's folder instead, and
// the worker's other folders by a placeholder.

export interface PathNames {
  /** the job's folder: shown as paths relative to it ('.' for itself) */
  workspace: string;
  /** other folders of the worker and what each reads as, e.g. [workDir, '<worker>'] */
  others: [string, string][];
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function redactPaths(text: string, names: PathNames): string {
  const all: [string, string][] = [[names.workspace, '.'], ...names.others];
  // Longest first: the job's folder lies inside the work dir.
  all.sort((a, b) => b[0].length - a[0].length);
  let out = text;
  for (const [abs, shown] of all) {
    const root = abs.replace(/\/+$/, '');
    if (root === '' || root === '/') continue;
    // "<root>/rest" → "rest" for the job's folder, "<worker>/rest" for the others; a bare "<root>"
    // not followed by more of a name → the placeholder.
    const re = new RegExp(`${escape(root)}(?:/([^\\s'"]*))?(?![\\w.-])`, 'g');
    out = out.replace(re, (_m, rest: string | undefined) => {
      if (!rest) return shown;
      return shown === '.' ? rest : `${shown}/${rest}`;
    });
  }
  return out;
}
