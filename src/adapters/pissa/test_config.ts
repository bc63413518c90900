// The shared adapter harness's PiSSA case: LoRA with this init (src/adapters/testing.ts).
import type { LoraInitTestConfig } from '../testing.ts';

export const testConfig: LoraInitTestConfig = {
  // A few power iterations keep the top-r SVD of the targets quick.
  config: { r: 4, lora_alpha: 8, init_lora_weights: 'pissa_niter_8' },
  lr: 1e-2,
};
