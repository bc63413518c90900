// The shared adapter harness's SoRA case (src/adapters/testing.ts).
import type { AdapterTestConfig } from '../testing.ts';
import type { SoraConfig } from './config.ts';

export const testConfig: AdapterTestConfig<SoraConfig> = {
  // λ small so the harness's short runs follow the task loss; ξ 0 keeps every gate open (a zeroed gate would stop training its rank).
  config: { r: 4, init_weights: false, sparse_lambda: 1e-3, sparse_lambda_2: 0 },
  merge: 'merge-unmerge',
  combine: true,
  mixedBatches: true,
  lr: 5e-3,
};
