// The shared adapter harness's AdaLoRA case (src/adapters/testing.ts).
import type { AdapterTestConfig } from '../testing.ts';
import type { AdaloraConfig } from './config.ts';

export const testConfig: AdapterTestConfig<AdaloraConfig> = {
  // init_lora_weights false: E ~ N(0, 1), so the adapter changes outputs; target_r = init_r keeps every triplet
  // through the short runs (masking is checked in test/adalora.test.ts); total_step set so the file is one PEFT loads.
  config: { init_r: 4, target_r: 4, init_lora_weights: false, total_step: 100, orth_reg_weight: 0.1 },
  merge: 'merge-unmerge',
  combine: true,
  mixedBatches: true,
  lr: 5e-3,
};
