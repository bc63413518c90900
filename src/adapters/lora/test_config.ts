// The shared adapter harness's LoRA case (src/adapters/testing.ts), plus rsLoRA.
import type { AdapterTestConfig } from '../testing.ts';
import type { LoraConfig } from './config.ts';

export const testConfig: AdapterTestConfig<LoraConfig> = {
  // init false: B random too, so the adapter changes outputs from the start.
  config: { r: 4, lora_alpha: 8, init_lora_weights: false },
  // Another scale, so weighted combination mixes two different scalings.
  other: { lora_alpha: 3 },
  merge: 'merge-unmerge',
  combine: true,
  mixedBatches: true,
  lr: 1e-2,
  variants: { rslora: { use_rslora: true } },
};
