// The shared adapter harness's DyLoRA case (src/adapters/testing.ts).
import type { AdapterTestConfig } from '../testing.ts';
import type { DyloraConfig } from './config.ts';

export const testConfig: AdapterTestConfig<DyloraConfig> = {
  // α 2: with a random B, α/b swings the output by 4× between b = 4 and b = 1; a small α keeps the short runs' per-step rank draws from dominating the loss.
  config: { r: 4, lora_alpha: 2, init_weights: false },
  other: { eval_rank: 2 },
  merge: 'merge-unmerge',
  combine: true,
  mixedBatches: true,
  lr: 5e-3,
};
