// `lorakit train --from-adapter A`: the run starts from a saved PEFT adapter
// folder (lorakit's or PEFT's) instead of a fresh init. The adapter's config
// decides the method, rank, alpha, targets and every other field (a flag that
// says otherwise is an error naming both values); its weights are loaded (a
// task head saved as modules_to_save too); the optimizer starts fresh (AdamW
// moments are not part of an adapter folder).

import path from 'node:path';
import type { AdapterSet } from '../adapters/inject.ts';
import type { LinearSite, WeightMap } from '../models/types.ts';
import { CONFIG_FILE, loadPeftAdapter, type PeftAdapter } from '../peft/adapter_files.ts';
import type { LoadedPeftConfig } from '../peft/config.ts';

/** A train flag the user gave that sets a field of the adapter's config (`--rank 4` → r = 4). */
export interface GivenFlag {
  /** As typed: '--rank'. */
  flag: string;
  /** 'method' (lorakit's method name), 'target_modules', or a PEFT config field ('r', 'lora_alpha'...). */
  field: string;
  value: unknown;
}

export interface StartFromAdapter {
  /** The adapter folder. */
  dir: string;
  /** Flags the user gave explicitly: each must agree with the adapter's config. */
  given?: GivenFlag[];
}

export interface FromAdapterResult {
  set: AdapterSet;
  peft: LoadedPeftConfig;
  /** The task's own tensors (a head) the adapter held, copied in; those it lacked keep their fresh init. */
  headLoaded: string[];
  headMissing: string[];
  /** The folder's tensors outside the adapter's modules (modules_to_save heads), by module path. */
  extraTensors: PeftAdapter['extraTensors'];
}

const same = (a: unknown, b: unknown): boolean => {
  const norm = (x: unknown) => (Array.isArray(x) ? JSON.stringify([...x].sort()) : JSON.stringify(x));
  return norm(a) === norm(b);
};

/** The value a flag is compared with: lorakit's method name, or the config field. */
function adapterValue(peft: LoadedPeftConfig, field: string): unknown {
  if (field === 'method') return peft.method.name;
  return peft.config[field];
}

/**
 * Loads `from.dir` onto the model for training: the adapter set (its config,
 * its values), the task head's tensors copied into `taskParams` when the
 * folder holds them (modules_to_save), shapes checked. A flag that disagrees
 * with the adapter's config fails naming the flag's and the adapter's value.
 */
export function startFromAdapter(
  model: { sites: LinearSite[]; weights: WeightMap },
  from: StartFromAdapter,
  opts: { headNames?: string[]; taskParams?: Map<string, { shape: number[]; data: Float32Array }>; warn?: (m: string) => void } = {},
): FromAdapterResult {
  const loaded: PeftAdapter = loadPeftAdapter(model, from.dir, { headNames: opts.headNames, warn: opts.warn });
  const { set, peft, extraTensors } = loaded;
  const conflicts = (from.given ?? []).filter((g) => g.value !== undefined && !same(g.value, adapterValue(peft, g.field)));
  if (conflicts.length) {
    const what = conflicts.map((g) => `${g.flag} ${JSON.stringify(g.value)} but the adapter has ${g.field === 'method' ? 'method' : g.field} = ${JSON.stringify(adapterValue(peft, g.field))}`).join('; ');
    throw new Error(`--from-adapter ${from.dir}: ${what} (${path.join(from.dir, CONFIG_FILE)}). The run continues the adapter as it is: leave the flag${conflicts.length > 1 ? 's' : ''} out, or train a fresh adapter without --from-adapter`);
  }
  const headLoaded: string[] = [], headMissing: string[] = [];
  for (const [k, t] of opts.taskParams ?? []) {
    const saved = extraTensors.get(k);
    if (!saved) {
      headMissing.push(k);
      continue;
    }
    if (saved.shape.join(',') !== t.shape.join(',')) {
      throw new Error(`--from-adapter ${from.dir}: the task's '${k}' is [${t.shape}] but the adapter holds [${saved.shape}] (another number of labels, or another base model?)`);
    }
    t.data.set(saved.data);
    headLoaded.push(k);
  }
  return { set, peft, headLoaded, headMissing, extraTensors };
}
