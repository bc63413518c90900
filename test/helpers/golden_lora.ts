// The LoRA adapter a PyTorch golden fixture was made with (tools/reference/hf_*.py):
// PEFT keys, shapes and the fixed A/B values, checked and loaded into an AdapterSet.
import assert from 'node:assert/strict';
import { AdapterSet } from '../../src/adapters/inject.ts';
import { lora } from '../../src/adapters/lora/index.ts';
import { loraConfigSchema } from '../../src/adapters/lora/config.ts';
import type { LinearSite, WeightMap } from '../../src/models/types.ts';

export interface GoldenLora {
  r: number;
  lora_alpha: number;
  target_modules: string[];
  params: Record<string, { shape: number[]; data: number[] }>;
}

export function goldenAdapters(model: { sites: LinearSite[]; weights: WeightMap; headNames: string[] }, gold: { lora: GoldenLora }): AdapterSet {
  const config = loraConfigSchema.parse({ r: gold.lora.r, lora_alpha: gold.lora.lora_alpha, init_lora_weights: false });
  const set = new AdapterSet(lora, config, model.sites, model.weights, { targetModules: gold.lora.target_modules, headNames: model.headNames });
  assert.equal(set.params.size, Object.keys(gold.lora.params).length);
  for (const [k, p] of Object.entries(gold.lora.params)) {
    assert.deepEqual(set.shapes.get(k), p.shape, k);
    set.params.get(k)!.set(p.data);
  }
  return set;
}
