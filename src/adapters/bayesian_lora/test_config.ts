// The shared adapter harness's Bayesian-LoRA case (src/adapters/testing.ts).
import type { AdapterTestConfig } from '../testing.ts';
import type { BayesianLoraConfig } from './config.ts';

export const testConfig: AdapterTestConfig<BayesianLoraConfig> = {
  config: { r: 4, init_weights: false },
  merge: 'merge-unmerge',
  combine: true,
  mixedBatches: true,
  lr: 5e-3,
};
