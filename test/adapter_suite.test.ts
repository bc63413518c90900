// Every adapter method through the shared harness (test/helpers/adapter_suite.ts).
import { registerAdapterCase, runAdapterSuite } from './helpers/adapter_suite.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { dora } from '../src/adapters/dora/index.ts';

const targets = ['qkv', 'conv2'];
registerAdapterCase({ name: 'lora', method: lora, config: { r: 4, lora_alpha: 8, init_lora_weights: false }, targetModules: targets });
registerAdapterCase({ name: 'rslora', method: lora, config: { r: 4, lora_alpha: 8, use_rslora: true, init_lora_weights: false }, targetModules: targets });
registerAdapterCase({ name: 'dora', method: dora, config: { r: 4, lora_alpha: 8, init_lora_weights: false }, targetModules: targets });
registerAdapterCase({ name: 'pissa', method: lora, config: { r: 4, lora_alpha: 8, init_lora_weights: 'pissa_niter_8' }, targetModules: targets, residualInit: true });
registerAdapterCase({ name: 'olora', method: lora, config: { r: 4, lora_alpha: 8, init_lora_weights: 'olora' }, targetModules: targets, residualInit: true });

runAdapterSuite();
