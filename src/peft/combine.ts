// PEFT's add_weighted_adapter: several adapters combined into one LoRA. Each
// input is read through its method's low-rank factors of ΔW (scale·B·A), so
// any method that has them combines with 'cat'; 'linear' is PEFT's rule on
// LoRA's own A and B.

import { AdapterSet, PEFT_PREFIX } from '../adapters/inject.ts';
import { lora } from '../adapters/lora/index.ts';
import { loraKeys } from '../adapters/lora/peft.ts';
import { METHODS } from '../adapters/registry.ts';
import type { LowRankFactors } from '../adapters/types.ts';
import type { LinearSite, WeightMap } from '../models/types.ts';

/** 'cat': exact Σ wᵢ·ΔWᵢ (r = Σ rᵢ); 'linear': PEFT's weighted sum of A and of B (equal ranks). */
export type Combination = 'cat' | 'linear';

/** PEFT add_weighted_adapter: see PeftModel.addWeightedAdapter. The result is a LoRA (alpha = r). */
export function combineAdapters(model: { sites: LinearSite[]; weights: WeightMap }, sets: AdapterSet[], weights: number[], combination: Combination): AdapterSet {
  if (sets.length !== weights.length || sets.length === 0) throw new Error(`addWeightedAdapter: ${sets.length} adapters but ${weights.length} weights`);
  for (const s of sets) {
    if (!s.method.factors) {
      const can = Object.values(METHODS).filter((m) => m.factors).map((m) => m.name);
      throw new Error(`addWeightedAdapter: method '${s.method.name}' cannot be combined: its ΔW has no low-rank factors B·A (methods that have them: ${can.join(', ')})`);
    }
    if (combination === 'linear' && !s.method.linearCombination) {
      throw new Error(`addWeightedAdapter 'linear' is PEFT's weighted sum of LoRA's own A and B; method '${s.method.name}' has none (use 'cat', the exact Σ wᵢ·ΔWᵢ)`);
    }
  }
  for (const s of sets) {
    const emb = s.targets.find((t) => t.kind === 'embedding');
    if (emb) throw new Error(`addWeightedAdapter: combining embedding adapters ('${emb.name}') is not supported`);
  }
  const sites = model.sites.filter((site) => sets.some((s) => s.isTarget(site.name)));
  // Each adapter's factors per site (the frozen weight it was built on, for methods that factor it).
  const factors = new Map<string, (LowRankFactors | null)[]>();
  for (const site of sites) {
    factors.set(site.name, sets.map((s) => (s.isTarget(site.name) ? s.factorsFor(site, () => s.baseOverrides.get(site.weightKey) ?? model.weights.get(site.weightKey)!.data) : null)));
  }
  const rank = new Map<string, number>();
  for (const site of sites) {
    const rs = factors.get(site.name)!.map((f) => f?.r ?? 0);
    if (combination === 'linear') {
      const nz = [...new Set(rs.filter((r) => r > 0))];
      if (nz.length > 1) throw new Error(`addWeightedAdapter 'linear' needs equal ranks; module '${site.name}' has ranks ${rs.join(', ')} (use 'cat')`);
      rank.set(site.name, nz[0]);
    } else rank.set(site.name, rs.reduce((a, b) => a + b, 0));
  }
  const first = sets[0].config as object;
  const baseCfg = lora.schema.parse({ ...first, r: rank.get(sites[0].name), lora_alpha: rank.get(sites[0].name), use_rslora: false, init_lora_weights: true });
  const out = new AdapterSet(lora, baseCfg, model.sites, model.weights, {
    targetModules: sites.map((s) => s.name),
    siteConfig: (site, c) => ({ ...c, r: rank.get(site.name)!, lora_alpha: rank.get(site.name)! }),
  });
  for (const site of sites) {
    const n = site.inFeatures, m = site.outFeatures, R = rank.get(site.name)!;
    const keys = loraKeys(site);
    const A = out.params.get(`${PEFT_PREFIX}${site.name}.${keys.A}`)!, B = out.params.get(`${PEFT_PREFIX}${site.name}.${keys.B}`)!;
    A.fill(0);
    B.fill(0);
    let off = 0;
    factors.get(site.name)!.forEach((f, i) => {
      if (!f) return;
      const s = f.scale, r = f.r, w = weights[i];
      if (combination === 'cat') {
        A.set(f.A, off * n);
        for (let a = 0; a < m; a++) for (let j = 0; j < r; j++) B[a * R + off + j] = w * s * f.B[a * r + j];
        off += r;
      } else {
        const sw = Math.sqrt(w);
        for (let j = 0; j < r * n; j++) A[j] += sw * s * f.A[j];
        for (let j = 0; j < m * r; j++) B[j] += sw * f.B[j];
      }
    });
  }
  return out;
}
