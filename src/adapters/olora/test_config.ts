// The shared adapter harness's OLoRA case: LoRA with this init (src/adapters/testing.ts).
import type { LoraInitTestConfig } from '../testing.ts';

export const testConfig: LoraInitTestConfig = {
  config: { r: 4, lora_alpha: 8, init_lora_weights: 'olora' },
  lr: 1e-2,
};
