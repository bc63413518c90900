// The shared adapter harness's DoRA case (src/adapters/testing.ts).
import type { AdapterTestConfig } from '../testing.ts';
import type { LoraConfig } from '../lora/config.ts';

export const testConfig: AdapterTestConfig<LoraConfig> = {
  config: { r: 4, lora_alpha: 8, init_lora_weights: false },
  // ΔW rescales W0's rows: not LoRA's B·A, so neither stacked nor combined.
  merge: 'merge',
  combine: false,
  mixedBatches: false,
  lr: 1e-2,
};
