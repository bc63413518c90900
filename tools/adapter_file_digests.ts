// sha256 of adapter_config.json and adapter_model.safetensors for a fixed set
// of saves: every registered method on the bundled USE model, LoRA's variants
// (rsLoRA, DoRA, PiSSA/OLoRA converted, rank/alpha_pattern, biases,
// modules_to_save, adapter names), and re-saves of the committed PEFT fixtures
// (and lorakit_config.json, lorakit's block beside PEFT's own types' files).
// Run it before and after a change to the save path: the files must not move.
//
//   npx tsx tools/adapter_file_digests.ts > before.json
//   npx tsx tools/adapter_file_digests.ts --compare before.json
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdapterSet } from '../src/adapters/inject.ts';
import { METHODS } from '../src/adapters/registry.ts';
import { smoraBias } from '../src/adapters/smora/index.ts';
import { loadModel } from '../src/models/hf_registry.ts';
import type { LinearSite, WeightMap } from '../src/models/types.ts';
import { loadUseEncoder } from '../src/models/use_encoder.ts';
import { readSafetensors } from '../src/io/safetensors.ts';
import { loadPeftAdapter, saveAdapter, type SavedAdapterInfo } from '../src/peft/adapter_files.ts';
import { tinySites } from '../test/helpers/tiny_model.ts';

const FIX = path.resolve(import.meta.dirname, '../test/fixtures');
const TARGETS = ['qkv', 'conv1'];
const digests: Record<string, { config: string; weights: string; lorakit?: string }> = {};
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-digests-'));

const sha = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

function record(name: string, set: AdapterSet, info: Omit<SavedAdapterInfo, 'baseModel'> & { baseModel?: string } = {}) {
  const out = saveAdapter(path.join(root, name), set, { baseModel: 'use', ...info });
  const side = path.join(out, 'lorakit_config.json');
  digests[name] = { config: sha(path.join(out, 'adapter_config.json')), weights: sha(path.join(out, 'adapter_model.safetensors')), ...(fs.existsSync(side) && { lorakit: sha(side) }) };
}

/** Moves every value off its init, deterministically (LoCA's integer locations stay). */
function perturb(set: AdapterSet) {
  for (const [k, v] of set.params) {
    if (k.endsWith('loca_locations')) continue;
    for (let i = 0; i < v.length; i++) v[i] += 0.01 * Math.sin(7 * i + k.length);
  }
}

const model = await loadUseEncoder();
const make = (method: string, config: Record<string, unknown>, opts: Partial<AdapterSet['options']> = {}) => {
  const m = METHODS[method];
  const set = new AdapterSet(m, m.schema.parse(config), model.sites, model.weights, { targetModules: TARGETS, seed: 3, ...opts });
  perturb(set);
  return set;
};

// Every registered method, small configs where the default is heavy.
const SMALL: Record<string, Record<string, unknown>> = {
  vera: { r: 16 }, nola: { r: 4, num_basis_A: 16, num_basis_B: 8 }, randlora: { r: 64 }, fourierft: { n_frequency: 64 },
  loca: { n_frequency: 64 }, smora: { num_ranks: 8, top_k: 2 }, lamda: { r: 4 }, loraxs: { r: 4 }, lorasb: { r: 4 }, loldu: { r: 4 },
};
for (const name of Object.keys(METHODS)) {
  const set = make(name, SMALL[name] ?? {});
  if (name === 'smora') for (const s of set.targets) smoraBias(set, s.name, 8).fill(0.25);
  record(`method-${name}`, set);
}

// LoRA's variants and the shared fields.
record('lora-rslora', make('lora', { r: 4, lora_alpha: 8, use_rslora: true }));
record('lora-dora', make('dora', { r: 4, lora_alpha: 8, init_lora_weights: false }));
for (const init of ['pissa_niter_4', 'olora']) {
  const set = make('lora', { r: 4, lora_alpha: 8, init_lora_weights: init });
  record(`lora-${init}`, set);
  record(`lora-${init}-converted`, set, { convertToLora: true });
}
{
  const set = make('lora', { r: 4, lora_alpha: 8, use_rslora: true, init_lora_weights: 'pissa' }, {
    siteConfig: (site: LinearSite, c: any) => (site.name.endsWith('conv1') ? { ...c, r: 2, lora_alpha: 3 } : c),
  });
  record('lora-pissa-patterns-converted', set, { convertToLora: true, peftConfig: { config: { rank_pattern: { conv1: 2 }, alpha_pattern: { conv1: 3 } } as any, unknown: {} } });
}
record('lora-patterns', make('lora', { r: 4, lora_alpha: 8 }, { siteConfig: (site: LinearSite, c: any) => (site.name.endsWith('qkv') ? { ...c, r: 2 } : c) }), {
  peftConfig: { config: { rank_pattern: { qkv: 2 }, alpha_pattern: { 'encoder.layer.1.ffn.conv1': 16 } } as any, unknown: { future_field: [1, 2] } },
});
record('lora-bias-lora_only', make('lora', { r: 4 }, { bias: 'lora_only' }));
record('lora-bias-all', make('lora', { r: 4 }, { bias: 'all' }));
record('lora-modules_to_save', make('lora', { r: 4 }, { modulesToSave: ['encoder.layer.0.dense'] }), {
  modulesToSave: new Map([['classifier.weight', { shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) }], ['classifier.bias', { shape: [2], data: Float32Array.of(7, 8) }]]),
  taskType: 'SEQ_CLS', extra: { labels: ['neg', 'pos'] },
});
record('lora-named', make('lora', { r: 4 }), { adapterName: 'fr' });
record('hydra-bias-modules', make('hydra', { r_seq: 2, r_par: 2 }, { bias: 'lora_only', modulesToSave: ['encoder.layer.0.dense'] }), { taskType: 'SEQ_CLS' });
record('vera-bias-all', make('vera', { r: 8 }, { bias: 'all' }));
record('fourierft-pattern', make('fourierft', { n_frequency: 32, n_frequency_pattern: { conv1: 16 } }));
record('lamda-plus-plus', make('lamda', { r: 4, lamda_plus_plus: true }));

// Re-saves of the committed PEFT fixtures (loaded, then saved with their parsed config).
const tinyWeights: WeightMap = new Map();
for (const [k, t] of readSafetensors(path.join(FIX, 'peft_ref', 'model.safetensors')).tensors) tinyWeights.set(k, { shape: t.shape, data: t.data as Float32Array });
const tiny = { sites: tinySites(), weights: tinyWeights };
const resave = (name: string, m: { sites: LinearSite[]; weights: WeightMap }, dir: string) => {
  const loaded = loadPeftAdapter(m, dir, { warn: () => {} });
  record(`resave-${name}`, loaded.set, { baseModel: 'fixture', peftConfig: loaded.peft });
};
for (const c of ['lora', 'rslora', 'dora', 'modules_to_save', 'rank_pattern', 'lora_only_bias']) resave(`peft_ref-${c}`, tiny, path.join(FIX, 'peft_ref', c));
for (const c of ['vera', 'randlora', 'fourierft']) resave(`peft_nonlora-${c}`, tiny, path.join(FIX, 'peft_nonlora', c));
resave('peft_fourierft', tiny, path.join(FIX, 'peft_fourierft'));
for (const [c, hf] of [['bert', 'bert'], ['gpt2', 'gpt2-tiny'], ['llama', 'llama-tiny']]) {
  const { model: m } = await loadModel(path.join(FIX, 'hf', hf));
  resave(`peft_embedding-${c}`, m as { sites: LinearSite[]; weights: WeightMap }, path.join(FIX, 'peft_embedding', c));
}

fs.rmSync(root, { recursive: true, force: true });
const cmp = process.argv.indexOf('--compare');
if (cmp < 0) {
  console.log(JSON.stringify(digests, null, 2));
} else {
  const before = JSON.parse(fs.readFileSync(process.argv[cmp + 1], 'utf8')) as typeof digests;
  const names = [...new Set([...Object.keys(before), ...Object.keys(digests)])];
  const moved = names.filter((n) => JSON.stringify(before[n]) !== JSON.stringify(digests[n]));
  const what = (n: string, k: 'config' | 'weights' | 'lorakit') => (before[n]?.[k] === digests[n]?.[k] ? 'same' : 'changed');
  for (const n of moved) console.log(`differs: ${n} (config ${what(n, 'config')}, weights ${what(n, 'weights')}, lorakit_config.json ${what(n, 'lorakit')})`);
  console.log(`${names.length - moved.length} of ${names.length} cases byte-identical`);
  process.exitCode = moved.length ? 1 : 0;
}
