// target_modules matching with PEFT's rules (peft/utils/other.py):
// a string is a regex that must match the whole module name; a list matches a
// name equal to an entry or ending with '.' + entry; 'all-linear' matches every
// linear site except the output head (never an embedding table, as in PEFT).

import type { LinearSite } from '../models/types.ts';
import { FileFormatError } from '../util/errors.ts';

export type TargetModules = string | string[];

export function matchesTarget(name: string, target: TargetModules): boolean {
  if (typeof target === 'string') {
    if (target === 'all-linear') return true;
    return new RegExp(`^(?:${target})$`).test(name);
  }
  return target.some((t) => name === t || name.endsWith(`.${t}`));
}

/** PEFT's pattern-key rule (rank_pattern, alpha_pattern ...), re.match(r"(.*\.)?(key)$", name): the key matches the end of the name at a "." boundary. */
export function patternMatches(key: string, name: string): boolean {
  return new RegExp(`^(.*\\.)?(${key})$`).test(name);
}

/** One module's value from a pattern map: the first key, in insertion order, that matches (PEFT's get_pattern_key), else `dflt`. */
export function patternValue<T>(pattern: Record<string, T> | null | undefined, name: string, dflt: T): T {
  for (const [k, v] of Object.entries(pattern ?? {})) if (patternMatches(k, name)) return v;
  return dflt;
}

export class TargetError extends FileFormatError {
  constructor(message: string) {
    super('', message);
    this.name = 'TargetError';
  }
}

/** The sites a target spec selects; an entry that matches nothing is an error listing what exists. */
export function selectTargets(sites: LinearSite[], target: TargetModules, headNames: string[] = []): LinearSite[] {
  const pool = target === 'all-linear' ? sites.filter((s) => !headNames.includes(s.name) && s.kind !== 'embedding') : sites;
  const chosen = pool.filter((s) => matchesTarget(s.name, target));
  const entries = typeof target === 'string' ? [target] : target;
  const unmatched = entries.filter((e) => !pool.some((s) => matchesTarget(s.name, typeof target === 'string' ? e : [e])));
  if (unmatched.length || chosen.length === 0) {
    const suffixes = [...new Set(sites.map((s) => s.name.split('.').slice(-2).join('.')))];
    throw new TargetError(
      `target_modules ${JSON.stringify(unmatched.length ? unmatched : target)} matched no module of this model.\n` +
        `Modules that exist: ${sites.map((s) => s.name).join(', ')}\n` +
        `Short names you can use: ${suffixes.join(', ')}`,
    );
  }
  return chosen;
}
