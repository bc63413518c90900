// lorakit → PEFT, step 1 (run: npx tsx tools/reference/lorakit_adapters.ts):
// writes adapter folders lorakit makes deterministically (a seeded init, then
// every value moved by a fixed sine pattern, standing in for training) to
// test/fixtures/peft_real/lorakit/<case>/adapter/ with a case.json. Step 2,
// in the offline PEFT environment (../shared/tools/peft-env/README.md):
//   ../shared/tools/peft-env/run.sh tools/reference/peft_real.py --lorakit
// loads each folder with real PEFT 0.20 (PeftModel.from_pretrained on the
// transformers model) and writes PEFT's outputs, merged weights and warnings
// next to it. test/peft_real.test.ts writes every case again and checks the
// files are byte-identical to these (so PEFT's recorded reading still holds)
// and that lorakit's outputs on them are PEFT's.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AdapterSet } from '../../src/adapters/inject.ts';
import { loadModel } from '../../src/models/hf_registry.ts';
import type { LinearSite, WeightMap } from '../../src/models/types.ts';
import { createPeftAdapter, saveAdapter } from '../../src/peft/adapter_files.ts';
import { saveAdapterAsLora } from '../../src/peft/as_lora.ts';
import { combineAdapters, type Combination } from '../../src/peft/combine.ts';
import { runStepHook } from '../../src/adapters/hooks.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const LORAKIT_FIXTURES = path.join(REPO, 'test', 'fixtures', 'peft_real', 'lorakit');

type Model = { sites: LinearSite[]; weights: WeightMap; headNames?: string[] };

/** One adapter as PEFT's adapter_config.json would describe it, made by lorakit. */
interface MadeCase {
  model: string;
  what: string;
  /** adapter_config.json fields (PEFT's names), or sources combined with add_weighted_adapter. */
  config?: Record<string, unknown>;
  combine?: { sources: Record<string, unknown>[]; weights: number[]; how: Combination };
  convertToLora?: boolean;
  /**
   * AdaLoRA: PEFT's update_and_allocate after each of `steps` steps, through lorakit's own hook (importance EMAs,
   * the budget, masking lora_E, the final rank pattern), fed fixed gradients (`quiet`: modules whose gradients are
   * 1000× smaller, so the allocator drops their triplets first).
   */
  allocate?: { steps: number; quiet?: string[] };
  /** 'lora': the plain PEFT LoRA the adapter amounts to (saveAdapterAsLora, `lorakit train --save-as lora`). */
  saveAs?: 'lora';
  seed: number;
}

const LLAMA = 'llama-tiny', GPT2 = 'gpt2-tiny';
const QV = ['q_proj', 'v_proj'];

export const LORAKIT_CASES: Record<string, MadeCase> = {
  lora_llama_patterns: {
    model: LLAMA, seed: 1, what: 'LoRA all-linear, rank_pattern / alpha_pattern, dropout',
    config: { peft_type: 'LORA', r: 4, lora_alpha: 8, lora_dropout: 0.05, target_modules: 'all-linear', rank_pattern: { q_proj: 2, 'layers.1.mlp.down_proj': 6 }, alpha_pattern: { v_proj: 16 } },
  },
  rslora_llama: { model: LLAMA, seed: 2, what: 'rsLoRA', config: { peft_type: 'LORA', r: 4, lora_alpha: 8, use_rslora: true, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] } },
  dora_llama: { model: LLAMA, seed: 3, what: 'DoRA', config: { peft_type: 'LORA', r: 4, lora_alpha: 8, use_dora: true, target_modules: [...QV, 'up_proj'] } },
  lora_llama_embedding: { model: LLAMA, seed: 4, what: 'LoRA on embed_tokens and q_proj', config: { peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['embed_tokens', 'q_proj'] } },
  lora_llama_exclude_layers: {
    model: LLAMA, seed: 5, what: 'exclude_modules, layers_to_transform',
    config: { peft_type: 'LORA', r: 3, lora_alpha: 6, target_modules: ['q_proj', 'k_proj', 'v_proj', 'gate_proj'], exclude_modules: ['k_proj'], layers_to_transform: [1], layers_pattern: 'layers' },
  },
  pissa_llama: { model: LLAMA, seed: 6, what: 'PiSSA init, saved converted to LoRA', convertToLora: true, config: { peft_type: 'LORA', r: 4, lora_alpha: 8, init_lora_weights: 'pissa', target_modules: QV } },
  olora_llama: { model: LLAMA, seed: 7, what: 'OLoRA init, saved converted to LoRA', convertToLora: true, config: { peft_type: 'LORA', r: 4, lora_alpha: 8, init_lora_weights: 'olora', target_modules: QV } },
  vera_llama: { model: LLAMA, seed: 8, what: 'VeRA (projections stored)', config: { peft_type: 'VERA', r: 8, projection_prng_key: 3, target_modules: [...QV, 'up_proj'] } },
  randlora_llama: { model: LLAMA, seed: 19, what: 'RandLoRA (projections stored)', config: { peft_type: 'RANDLORA', r: 8, randlora_alpha: 40, projection_prng_key: 4, target_modules: [...QV, 'up_proj'] } },
  fourierft_llama: { model: LLAMA, seed: 9, what: 'FourierFT', config: { peft_type: 'FOURIERFT', n_frequency: 50, scaling: 100, random_loc_seed: 7, n_frequency_pattern: { v_proj: 20 }, target_modules: [...QV, 'down_proj'] } },
  fourierft_llama_ortho: {
    model: LLAMA, seed: 10, what: "FourierFT with lorakit's ifft2_norm 'ortho': the spectrum saved in PEFT's terms",
    config: { peft_type: 'FOURIERFT', n_frequency: 50, scaling: 2, random_loc_seed: 7, target_modules: [...QV, 'down_proj'], lorakit: { ifft2_norm: 'ortho' } },
  },
  lora_gpt2_lora_only: { model: GPT2, seed: 11, what: "Conv1D (fan_in_fan_out), bias 'lora_only' (base_layer.bias saved)", config: { peft_type: 'LORA', r: 4, lora_alpha: 8, fan_in_fan_out: true, bias: 'lora_only', target_modules: ['c_attn', 'c_fc'] } },
  lora_gpt2_bias_all: { model: GPT2, seed: 12, what: "bias 'all': every bias of the model (LayerNorms too)", config: { peft_type: 'LORA', r: 4, lora_alpha: 8, fan_in_fan_out: true, bias: 'all', target_modules: ['c_attn'] } },
  dora_gpt2: { model: GPT2, seed: 13, what: 'DoRA on Conv1D', config: { peft_type: 'LORA', r: 4, lora_alpha: 8, use_dora: true, fan_in_fan_out: true, target_modules: ['c_attn', 'c_proj'] } },
  lora_bert_seq_cls: { model: 'bert', seed: 14, what: 'LoRA + the classifier in modules_to_save (SEQ_CLS)', config: { peft_type: 'LORA', task_type: 'SEQ_CLS', r: 4, lora_alpha: 8, target_modules: ['query', 'value'], modules_to_save: ['classifier'] } },
  lora_t5: { model: 't5-tiny', seed: 15, what: 'LoRA on T5 q, v, wi, wo', config: { peft_type: 'LORA', task_type: 'SEQ_2_SEQ_LM', r: 4, lora_alpha: 8, target_modules: ['q', 'v', 'wi', 'wo'] } },
  lora_bart: { model: 'bart-tiny', seed: 16, what: 'LoRA on BART q_proj, v_proj, fc1 (rank_pattern)', config: { peft_type: 'LORA', task_type: 'SEQ_2_SEQ_LM', r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj', 'fc1'], rank_pattern: { fc1: 2 } } },
  adalora_llama: {
    model: LLAMA, seed: 20, what: 'AdaLoRA after 8 steps of update_and_allocate (warm-up, cubic budget, final mask, fixed pattern): masked triplets dropped, rank_pattern',
    config: { peft_type: 'ADALORA', init_r: 6, target_r: 2, lora_alpha: 16, tinit: 1, tfinal: 2, total_step: 8, target_modules: [...QV, 'up_proj'] },
    allocate: { steps: 8, quiet: ['model.layers.1.self_attn.q_proj'] },
  },
  adalora_llama_as_lora: {
    model: LLAMA, seed: 20, what: "adalora_llama's adapter as the plain PEFT LoRA it amounts to (--save-as lora: rank_pattern, alpha_pattern, exclude_modules)", saveAs: 'lora',
    config: { peft_type: 'ADALORA', init_r: 6, target_r: 2, lora_alpha: 16, tinit: 1, tfinal: 2, total_step: 8, target_modules: [...QV, 'up_proj'] },
    allocate: { steps: 8, quiet: ['model.layers.1.self_attn.q_proj'] },
  },
  adalora_gpt2: {
    model: GPT2, seed: 21, what: "AdaLoRA on Conv1D, bias 'lora_only', allocated over 6 steps",
    config: { peft_type: 'ADALORA', init_r: 4, target_r: 2, tinit: 1, tfinal: 1, total_step: 6, fan_in_fan_out: true, bias: 'lora_only', target_modules: ['c_attn', 'c_fc'] },
    allocate: { steps: 6 },
  },
  adalora_gpt2_as_lora: {
    model: GPT2, seed: 21, what: 'adalora_gpt2 as a plain PEFT LoRA (fan_in_fan_out for Conv1D, the trained biases)', saveAs: 'lora',
    config: { peft_type: 'ADALORA', init_r: 4, target_r: 2, tinit: 1, tfinal: 1, total_step: 6, fan_in_fan_out: true, bias: 'lora_only', target_modules: ['c_attn', 'c_fc'] },
    allocate: { steps: 6 },
  },
  adalora_bert_seq_cls_alpha0: {
    model: 'bert', seed: 22, what: 'AdaLoRA + classifier (SEQ_CLS), lora_alpha 0: E of each pruned module saved times init_r/kept so PEFT, which scales it by the kept rank, gives the trained adapter',
    config: { peft_type: 'ADALORA', task_type: 'SEQ_CLS', init_r: 4, target_r: 2, lora_alpha: 0, tinit: 1, tfinal: 1, total_step: 6, target_modules: ['query', 'value'], modules_to_save: ['classifier'] },
    allocate: { steps: 6, quiet: ['bert.encoder.layer.0.attention.self.value'] },
  },
  adalora_llama_midway: {
    model: LLAMA, seed: 23, what: 'AdaLoRA all-linear saved midway through the budget phase (deltaT 2, 8 of 20 steps): the last mask was at t = 6, the step after moved the masked lora_E entries again and the save drops them by rank_pattern, as PEFT does',
    config: { peft_type: 'ADALORA', init_r: 4, target_r: 2, lora_alpha: 8, tinit: 1, tfinal: 4, deltaT: 2, total_step: 20, target_modules: 'all-linear' },
    allocate: { steps: 8 },
  },
  combine_linear_negative: {
    model: LLAMA, seed: 17, what: "addWeightedAdapter 'linear', weights [1, -0.5], alphas 8 and 32",
    combine: { sources: [{ peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: QV }, { peft_type: 'LORA', r: 4, lora_alpha: 32, target_modules: [...QV, 'k_proj'] }], weights: [1, -0.5], how: 'linear' },
  },
  combine_cat_rslora: {
    model: LLAMA, seed: 18, what: "addWeightedAdapter 'cat' of rsLoRA adapters (the result keeps use_rslora)",
    combine: { sources: [{ peft_type: 'LORA', r: 4, lora_alpha: 8, use_rslora: true, target_modules: QV }, { peft_type: 'LORA', r: 2, lora_alpha: 16, use_rslora: true, target_modules: QV }], weights: [0.6, 0.4], how: 'cat' },
  },
};

/** Methods whose parameters need larger moves to change the outputs visibly (spectra, RandLoRA's λ from 0). */
const BIG_MOVES = new Set(['FOURIERFT', 'RANDLORA', 'ADALORA']);

/** Every value moved off its init by a fixed pattern: stands in for training, the same on every machine. */
function move(set: AdapterSet, amp = 0.05) {
  for (const [k, v] of set.params) for (let i = 0; i < v.length; i++) v[i] += amp * Math.sin(0.7 * i + k.length);
}

function make(model: Model, config: Record<string, unknown>, seed: number): AdapterSet {
  const { set } = createPeftAdapter(model, config, { seed, headNames: model.headNames, warn: (m) => { throw new Error(m); } });
  move(set, BIG_MOVES.has(config.peft_type as string) ? 0.5 : 0.05);
  return set;
}

/**
 * lorakit's update_and_allocate hook after each of `steps` steps with fixed gradients (a sine pattern per tensor;
 * `quiet` modules' 1000× smaller), the parameters moved a little each step as an optimizer would.
 */
function allocate(set: AdapterSet, steps: number, quiet: string[] = []) {
  for (let step = 1; step <= steps; step++) {
    const grads = new Map<string, Float32Array>();
    for (const [k, v] of set.params) {
      const amp = quiet.some((m) => k.startsWith(`base_model.model.${m}.`)) ? 1e-4 : 0.1;
      const g = v.map((_, i) => amp * Math.sin(1.3 * i + 0.9 * step + k.length));
      grads.set(k, g);
      for (let i = 0; i < v.length; i++) v[i] -= 0.01 * g[i];
    }
    runStepHook('afterStep', set, { step, totalSteps: steps, lr: 0.01, baseLr: 0.01, warmupSteps: 0, seed: 0, params: set.params, grads, outputs: {} });
  }
}

/** Writes case `name` into `dir` (dir/adapter/ and dir/case.json); returns the adapter set it saved. */
export async function writeLorakitCase(name: string, dir: string): Promise<AdapterSet> {
  const c = LORAKIT_CASES[name];
  const { model } = (await loadModel(path.join(REPO, 'test', 'fixtures', 'hf', c.model))) as { model: Model };
  const baseModel = `test/fixtures/hf/${c.model}`;
  let set: AdapterSet, peftConfig;
  if (c.combine) {
    const sources = c.combine.sources.map((s, i) => make(model, s, c.seed + 100 * i));
    set = combineAdapters(model, sources, c.combine.weights, c.combine.how, { headNames: model.headNames });
  } else {
    const made = createPeftAdapter(model, c.config!, { seed: c.seed, headNames: model.headNames, warn: (m) => { throw new Error(m); } });
    set = made.set;
    peftConfig = made.peft;
    move(set, BIG_MOVES.has(c.config!.peft_type as string) ? 0.5 : 0.05);
    if (c.allocate) allocate(set, c.allocate.steps, c.allocate.quiet);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  const info = { baseModel, taskType: c.config?.task_type as string | undefined };
  if (c.saveAs === 'lora') saveAdapterAsLora(path.join(dir, 'adapter'), set, info);
  else saveAdapter(path.join(dir, 'adapter'), set, { ...info, peftConfig, convertToLora: c.convertToLora, warn: () => {} });
  fs.writeFileSync(path.join(dir, 'case.json'), JSON.stringify({ model: c.model, what: c.what }, null, 2) + '\n');
  return set;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const name of Object.keys(LORAKIT_CASES)) {
    await writeLorakitCase(name, path.join(LORAKIT_FIXTURES, name));
    console.log(`wrote ${path.relative(REPO, path.join(LORAKIT_FIXTURES, name))}`);
  }
}
