// PEFT's add_weighted_adapter (peft/tuners/lora/model.py, 0.20): several
// adapters combined into one LoRA. Each input is read through its method's
// low-rank factors of ΔW (scale·B·A), so any method that has them combines
// with 'cat'; 'linear' is PEFT's rule on LoRA's own A and B.
//
// With sᵢ the input's scaling at a module and wᵢ its weight:
//   'linear': A = Σ sign(wᵢsᵢ)·√|wᵢsᵢ|·Aᵢ,  B = Σ √|wᵢsᵢ|·Bᵢ    (every input of rank R)
//   'cat':    A = [w₁s₁A₁; w₂s₂A₂; …],      B = [B₁ | B₂ | …]    (R = Σ Rᵢ, zero rows/columns
//             where a module's input has a smaller rank or no adapter)
// The result is the first input's config with r = lora_alpha = R and no
// rank/alpha patterns; like PEFT it keeps the first input's use_rslora, so
// its own scaling is R/√R = √R (not 1) when that is set: ΔW = √R·B·A.

import { AdapterSet, PEFT_PREFIX } from '../adapters/inject.ts';
import { lora } from '../adapters/lora/index.ts';
import type { LoraConfig } from '../adapters/lora/config.ts';
import { loraKeys } from '../adapters/lora/peft.ts';
import { METHODS } from '../adapters/registry.ts';
import { selectTargets, type TargetModules } from '../adapters/targets.ts';
import type { LowRankFactors } from '../adapters/types.ts';
import type { LinearSite, WeightMap } from '../models/types.ts';
import { float32Of } from '../quant/quantized_weights.ts';

/** 'cat': exact Σ wᵢ·ΔWᵢ (r = Σ rᵢ); 'linear': PEFT's weighted sum of A and of B (equal ranks). */
export type Combination = 'cat' | 'linear';

export interface CombineOptions {
  /** Told when the result's own scaling is not 1 (the first input uses rsLoRA). */
  warn?: (message: string) => void;
  /** Output heads that 'all-linear' leaves out (the model's headNames), for the union of target_modules. */
  headNames?: string[];
}

/** PEFT's rank of an input for the new adapter's size: its largest per-module rank (LoRA: max(r, rank_pattern values)). */
function inputRank(set: AdapterSet, factors: (LowRankFactors | null)[]): number {
  const own = set.method.linearCombination ? (set.config as { r?: number }).r ?? 0 : 0;
  return Math.max(own, ...factors.map((f) => f?.r ?? 0));
}

/**
 * PEFT's new target_modules: the union of the inputs' lists, or their regexes
 * joined with '|' ((a)|(b)); a mix of both is refused, as by PEFT. Used when it
 * selects exactly the modules the inputs adapt; else (inputs narrowed by
 * exclude_modules or layers_to_transform) the adapted modules by full name.
 */
function unionTargets(model: { sites: LinearSite[] }, sets: AdapterSet[], sites: LinearSite[], headNames?: string[]): TargetModules {
  const ts = sets.map((s) => s.options.targetModules);
  const strings = ts.filter((t) => typeof t === 'string');
  if (strings.length && strings.length !== ts.length) throw new Error("addWeightedAdapter: the adapters' target_modules mix a regex string and lists, which PEFT does not combine");
  const union: TargetModules = strings.length ? (ts.length === 1 ? ts[0] : ts.map((t) => `(${t})`).join('|')) : [...new Set(ts.flat())];
  let selected: string[] = [];
  try {
    selected = selectTargets(model.sites, union, headNames).map((s) => s.name);
  } catch {
    /* an entry that matches nothing on its own: use the names */
  }
  const same = selected.length === sites.length && sites.every((s) => selected.includes(s.name));
  return same ? union : sites.map((s) => s.name);
}

/** PEFT add_weighted_adapter: see PeftModel.addWeightedAdapter. The result is a LoRA (lora_alpha = r). */
export function combineAdapters(model: { sites: LinearSite[]; weights: WeightMap }, sets: AdapterSet[], weights: number[], combination: Combination, opts: CombineOptions = {}): AdapterSet {
  if (sets.length !== weights.length || sets.length === 0) throw new Error(`addWeightedAdapter: ${sets.length} adapters but ${weights.length} weights`);
  weights.forEach((w, i) => {
    if (!Number.isFinite(w)) throw new Error(`addWeightedAdapter: weight ${i} is ${w}; weights must be finite numbers (negative ones subtract that adapter)`);
  });
  // PEFT: with one adapter only 'linear' applies.
  const how: Combination = sets.length === 1 ? 'linear' : combination;
  for (const s of sets) {
    if (!s.method.factors) {
      const can = Object.values(METHODS).filter((m) => m.factors).map((m) => m.name);
      throw new Error(`addWeightedAdapter: method '${s.method.name}' cannot be combined: its ΔW has no low-rank factors B·A (methods that have them: ${can.join(', ')})`);
    }
    if (how === 'linear' && !s.method.linearCombination) {
      throw new Error(`addWeightedAdapter 'linear' is PEFT's weighted sum of LoRA's own A and B; method '${s.method.name}' has none (use 'cat', the exact Σ wᵢ·ΔWᵢ)`);
    }
    if (s.baseOverrides.size) throw new Error(`addWeightedAdapter: an adapter with a PiSSA/OLoRA init changed its base weights; save it converted to LoRA (convertToLora) and combine the converted one`);
    const copies = s.baseCopyKeys();
    if (copies.length) throw new Error(`addWeightedAdapter combines the adapters' ΔW only; an adapter also trains base tensors (bias / modules_to_save: ${copies.slice(0, 3).join(', ')}${copies.length > 3 ? ', …' : ''}), which a combination cannot carry`);
  }
  const sites = model.sites.filter((site) => sets.some((s) => s.isTarget(site.name)));
  // Each adapter's factors per site (the frozen weight it was built on, for methods that factor it).
  const factors = new Map<string, (LowRankFactors | null)[]>();
  for (const site of sites) {
    factors.set(site.name, sets.map((s) => (s.isTarget(site.name) ? s.factorsFor(site, () => float32Of(s.baseOverrides.get(site.weightKey) ?? model.weights.get(site.weightKey)!.data)) : null)));
  }
  const ranks = sets.map((s, i) => inputRank(s, sites.map((site) => factors.get(site.name)![i])));
  let R: number;
  if (how === 'linear') {
    if (new Set(ranks).size > 1) throw new Error(`addWeightedAdapter 'linear' needs adapters of the same rank (PEFT's rule); they have r = ${ranks.join(', ')} (use 'cat')`);
    R = ranks[0];
    for (const site of sites) {
      const odd = factors.get(site.name)!.find((f) => f && f.r !== R);
      if (odd) throw new Error(`addWeightedAdapter 'linear': module '${site.name}' has rank ${odd.r} (rank_pattern) where the adapters have r = ${R}; PEFT cannot store that sum at rank ${R} (use 'cat')`);
    }
  } else R = ranks.reduce((a, b) => a + b, 0);

  const first = sets[0];
  const firstLora = first.method.linearCombination ? (first.config as LoraConfig) : undefined;
  const config = lora.schema.parse({
    lora_dropout: firstLora?.lora_dropout ?? 0,
    fan_in_fan_out: firstLora?.fan_in_fan_out ?? false,
    use_rslora: firstLora?.use_rslora ?? false,
    r: R,
    lora_alpha: R,
    init_lora_weights: true,
  });
  if (config.use_rslora) {
    opts.warn?.(`addWeightedAdapter: the first adapter uses rsLoRA, so the combination keeps use_rslora with r = lora_alpha = ${R}, as PEFT does: its own scaling is √${R} = ${Math.sqrt(R).toPrecision(4)}, not 1 (ΔW = √${R}·B·A)`);
  }
  const out = new AdapterSet(lora, config, model.sites, model.weights, {
    targetModules: unionTargets(model, sets, sites, opts.headNames),
    filter: (site) => sites.includes(site),
    headNames: opts.headNames,
  });
  for (const site of sites) {
    const n = site.inFeatures, m = site.outFeatures;
    const keys = loraKeys(site);
    const A = out.params.get(`${PEFT_PREFIX}${site.name}.${keys.A}`)!, B = out.params.get(`${PEFT_PREFIX}${site.name}.${keys.B}`)!;
    A.fill(0);
    B.fill(0);
    let off = 0;
    factors.get(site.name)!.forEach((f, i) => {
      if (!f) return;
      const ws = weights[i] * f.scale, r = f.r;
      if (how === 'cat') {
        for (let j = 0; j < r * n; j++) A[off * n + j] = ws * f.A[j];
        for (let a = 0; a < m; a++) for (let j = 0; j < r; j++) B[a * R + off + j] = f.B[a * r + j];
        off += r;
      } else {
        // The sign on A only (on both it would cancel).
        const cB = Math.sqrt(Math.abs(ws)), cA = ws < 0 ? -cB : cB;
        for (let j = 0; j < r * n; j++) A[j] += cA * f.A[j];
        for (let j = 0; j < m * r; j++) B[j] += cB * f.B[j];
      }
    });
  }
  return out;
}
