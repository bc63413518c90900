// An adapter saved as the plain LoRA it amounts to: each module's ΔW as
// scale·B·A from its method's low-rank factors (AdapterMethod.factors), written
// as PEFT's LORA with a per-module rank and alpha (rank_pattern, alpha_pattern:
// alpha_i = scale_i·r_i, so PEFT's alpha/r is the method's scale). Modules
// whose rank fell to 0 (SoRA's and CoDyRA's closed gates, AdaLoRA's masked
// triplets) are left out through exclude_modules, as PEFT's LoRA needs r ≥ 1.
// The folder loads wherever a LoRA loads (PEFT, lorakit's loader as method
// 'lora'); the gated method's own folder stays what saveAdapter writes.

import fs from 'node:fs';
import path from 'node:path';
import { lora } from '../adapters/lora/index.ts';
import { PEFT_PREFIX, type AdapterSet } from '../adapters/inject.ts';
import type { StoredTensor } from '../adapters/types.ts';
import type { LinearSite } from '../models/types.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { CONFIG_FILE, WEIGHTS_FILE, peftConfigOf, writeLorakitConfig, type SavedAdapterInfo } from './adapter_files.ts';
import { serializePeftConfig } from './config.ts';

/**
 * fan_in_fan_out as PEFT would save it: PEFT sets it from the modules it wraps (true on a Conv1D, false on an
 * nn.Linear; with a warning when the config said otherwise) before writing the config. From the sites' layouts
 * when every adapted linear module has the same one (else undefined: PEFT's default, false).
 */
function fanInFanOutOf(sites: readonly LinearSite[]): boolean | undefined {
  const linear = sites.filter((s) => s.kind !== 'embedding');
  if (!linear.length) return undefined;
  if (linear.every((s) => s.layout === 'in_out')) return true;
  if (linear.every((s) => s.layout === 'out_in')) return false;
  return undefined;
}

export interface AsLoraResult {
  dir: string;
  /** Rank of each adapted module in the saved LoRA (0: left out). */
  ranks: Record<string, number>;
  /** Trainable parameters of the saved LoRA (Σ r_i·(in_i + out_i)). */
  params: number;
}

/** Writes `set` as a plain PEFT LoRA folder (see above); the method must have low-rank factors. */
export function saveAdapterAsLora(dir: string, set: AdapterSet, info: Omit<SavedAdapterInfo, 'convertToLora' | 'peftConfig'>): AsLoraResult {
  if (!set.method.factors) throw new Error(`Method '${set.method.name}' has no low-rank factors of ΔW: it cannot be saved as a plain LoRA (save it as itself with saveAdapter)`);
  if (set.baseOverrides.size) throw new Error(`saveAdapterAsLora: '${set.method.name}' changed the base weights (a residual init): save it with saveAdapter({ convertToLora: true })`);
  const out = info.adapterName && info.adapterName !== 'default' ? path.join(dir, info.adapterName) : dir;
  fs.mkdirSync(out, { recursive: true });
  const tensors: Record<string, StoredTensor> = {};
  const ranks: Record<string, number> = {}, rankPattern: Record<string, number> = {}, alphaPattern: Record<string, number> = {};
  const excluded: string[] = [];
  let params = 0;
  for (const site of set.targets) {
    if (site.kind === 'embedding') throw new Error(`saveAdapterAsLora: '${site.name}' is an embedding module; only linear modules are written as LoRA factors`);
    const f = set.factorsFor(site);
    ranks[site.name] = f.r;
    if (f.r === 0) {
      excluded.push(site.name);
      continue;
    }
    tensors[`${PEFT_PREFIX}${site.name}.lora_A.weight`] = { shape: [f.r, site.inFeatures], data: f.A };
    tensors[`${PEFT_PREFIX}${site.name}.lora_B.weight`] = { shape: [site.outFeatures, f.r], data: f.B };
    rankPattern[site.name] = f.r;
    alphaPattern[site.name] = f.scale * f.r;
    params += f.r * (site.inFeatures + site.outFeatures);
  }
  // Trained copies of base tensors (bias, modules_to_save) under the same keys, and the task head.
  for (const k of set.baseCopyKeys()) tensors[k] = { shape: set.shapes.get(k)!, data: set.params.get(k)! };
  const modules = new Set<string>();
  for (const [k, t] of info.modulesToSave ?? []) {
    tensors[PEFT_PREFIX + k] = { shape: t.shape, data: t.data };
    modules.add(k.split('.').slice(0, -1).join('.'));
  }
  const rs = Object.values(rankPattern);
  const r = rs.length ? Math.max(...rs) : 1;
  const loraConfig = lora.schema.parse({ r, lora_alpha: alphaPattern[Object.keys(rankPattern).find((k) => rankPattern[k] === r) ?? ''] ?? r, fan_in_fan_out: fanInFanOutOf(set.targets) ?? false });
  const fields = peftConfigOf(
    { method: lora, config: loraConfig, options: set.options },
    { ...info, modulesToSave: [...modules], peftConfig: { method: lora, config: { rank_pattern: rankPattern, alpha_pattern: alphaPattern, ...(excluded.length && { exclude_modules: excluded }) } } },
  );
  writeSafetensors(path.join(out, WEIGHTS_FILE), Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, { dtype: 'F32' as const, shape: t.shape, data: t.data }])), { format: 'pt' });
  // lorakit's block beside adapter_config.json, as saveAdapter writes it for PEFT's types (PEFT warns about a key it does not know).
  writeLorakitConfig(out, { method: 'lora', seed: set.options.seed ?? 0, pruned_from: set.method.name, ...info.extra });
  writeFileAtomic(path.join(out, CONFIG_FILE), serializePeftConfig(fields));
  return { dir: out, ranks, params };
}
