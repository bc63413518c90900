// The shared adapter harness's RandLoRA case (src/adapters/testing.ts).
import type { AdapterTestConfig } from '../testing.ts';
import type { RandloraConfig } from './index.ts';

export const testConfig: AdapterTestConfig<RandloraConfig> = {
  // A large r keeps N = ⌈min(in, out)/r⌉ bases (and the graph) small.
  config: { r: 64, randlora_alpha: 64, projection_prng_key: 1, init_weights: false },
  merge: 'merge-unmerge',
  combine: false,
  mixedBatches: false,
  lr: 1e-2,
};
