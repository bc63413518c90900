// PEFT's add_weighted_adapter for LoRA: several adapters combined into one.

import { AdapterSet, PEFT_PREFIX } from '../adapters/inject.ts';
import { lora } from '../adapters/lora/index.ts';
import { loraScaling, LoraConfig } from '../adapters/lora/config.ts';
import type { LinearSite, WeightMap } from '../models/types.ts';

/** 'cat': exact Σ wᵢ·ΔWᵢ (r = Σ rᵢ); 'linear': PEFT's weighted sum of A and of B (equal ranks). */
export type Combination = 'cat' | 'linear';

/** PEFT add_weighted_adapter (LoRA): see PeftModel.addWeightedAdapter. */
export function combineAdapters(model: { sites: LinearSite[]; weights: WeightMap }, sets: AdapterSet[], weights: number[], combination: Combination): AdapterSet {
  if (sets.length !== weights.length || sets.length === 0) throw new Error(`addWeightedAdapter: ${sets.length} adapters but ${weights.length} weights`);
  for (const s of sets) if (!s.method.combinable) throw new Error(`addWeightedAdapter: method '${s.method.name}' cannot be combined (LoRA only)`);
  for (const s of sets) {
    const emb = s.targets.find((t) => t.kind === 'embedding');
    if (emb) throw new Error(`addWeightedAdapter: combining embedding adapters ('${emb.name}') is not supported`);
  }
  const sites = model.sites.filter((site) => sets.some((s) => s.isTarget(site.name)));
  const rank = new Map<string, number>();
  for (const site of sites) {
    const rs = sets.map((s) => (s.isTarget(site.name) ? (s.configFor(site) as LoraConfig).r : 0));
    if (combination === 'linear') {
      const nz = [...new Set(rs.filter((r) => r > 0))];
      if (nz.length > 1) throw new Error(`addWeightedAdapter 'linear' needs equal ranks; module '${site.name}' has ranks ${rs.join(', ')} (use 'cat')`);
      rank.set(site.name, nz[0]);
    } else rank.set(site.name, rs.reduce((a, b) => a + b, 0));
  }
  const first = sets[0].config as LoraConfig;
  const baseCfg = lora.schema.parse({ ...first, r: rank.get(sites[0].name), lora_alpha: rank.get(sites[0].name), use_rslora: false, init_lora_weights: true });
  const out = new AdapterSet(lora, baseCfg, model.sites, model.weights, {
    targetModules: sites.map((s) => s.name),
    siteConfig: (site, c) => ({ ...c, r: rank.get(site.name)!, lora_alpha: rank.get(site.name)! }),
  });
  for (const site of sites) {
    const n = site.inFeatures, m = site.outFeatures, R = rank.get(site.name)!;
    const A = out.params.get(`${PEFT_PREFIX}${site.name}.lora_A.weight`)!, B = out.params.get(`${PEFT_PREFIX}${site.name}.lora_B.weight`)!;
    A.fill(0);
    B.fill(0);
    let off = 0;
    sets.forEach((set, i) => {
      if (!set.isTarget(site.name)) return;
      const cfg = set.configFor(site) as LoraConfig;
      const p = set.siteParams(site), s = loraScaling(cfg), r = cfg.r, w = weights[i];
      if (combination === 'cat') {
        A.set(p['lora_A.weight'], off * n);
        for (let a = 0; a < m; a++) for (let j = 0; j < r; j++) B[a * R + off + j] = w * s * p['lora_B.weight'][a * r + j];
        off += r;
      } else {
        const sw = Math.sqrt(w);
        for (let j = 0; j < r * n; j++) A[j] += sw * s * p['lora_A.weight'][j];
        for (let j = 0; j < m * r; j++) B[j] += sw * p['lora_B.weight'][j];
      }
    });
  }
  return out;
}
