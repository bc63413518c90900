// `lorakit export-recipe`: a causal-LM LoRA run handed to an engine people
// run on clusters (PyTorch DDP through torchrun, Hugging Face accelerate),
// with everything lorakit would do written down so that nothing is re-created
// by hand in Python:
//
//   R/adapter0/      the step-0 adapter (seeded init, or --from-adapter A), PEFT files
//   R/data.json      the training examples as token ids + prompt length (lorakit's
//                    tokenizer, chat template, EOS, truncation already applied)
//   R/recipe.json    every effective setting: LoraConfig and per-module scale, AdamW,
//                    schedule, clipping, global batch → per-rank batch × accumulation,
//                    epochs, seed, loss normalization, and lorakit's batch order
//   R/train.py       torch only (the repo's reference decoders, safetensors by hand),
//                    or transformers + PEFT (--backend peft)
//   R/launch.sh      torchrun or accelerate, with the workarounds the installed versions need
//                    (src/tasks/recipe/launch.ts; accelerate_config.yaml, and ds_config.json with --deepspeed)
//
// The batch order is lorakit's (seeded), so a run on N processes takes the
// steps lorakit would take on one: its per-step losses replay lorakit's.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdapterSet } from '../../adapters/inject.ts';
import { getMethod } from '../../adapters/registry.ts';
import type { TargetModules } from '../../adapters/targets.ts';
import { loraScaling, type LoraConfig } from '../../adapters/lora/config.ts';
import { readCausalLmJsonl } from '../../data/records.ts';
import { writeFileAtomic } from '../../io/atomic.ts';
import { loadModel, peftBaseModelName } from '../../models/load.ts';
import { CONFIG_FILE, saveAdapter, type KeptPeftConfig } from '../../peft/adapter_files.ts';
import type { FitOptions } from '../../train/loop.ts';
import { encodeCausalLm } from '../../train/tasks/causal_lm.ts';
import { lengthGroupedBatches } from '../../train/tasks/lm.ts';
import { Rng } from '../../util/rng.ts';
import { startFromAdapter, type StartFromAdapter } from '../from_adapter.ts';
import { accelerateConfig, deepSpeedConfig, DS_CONFIG_FILE, launchScript, type DeepSpeedStage, type RecipeEngine } from './launch.ts';

export type { RecipeEngine, DeepSpeedStage } from './launch.ts';

/** What train.py implements (plain torch and PEFT alike): LoRA with any scaling / per-module rank and alpha, and DoRA. */
export const RECIPE_METHODS = ['lora', 'dora'] as const;
export type RecipeMethod = (typeof RECIPE_METHODS)[number];

/** The loop's settings the recipe carries over (recipe.json); maxGradNorm 0 or undefined: no clipping. */
type RecipeFitSettings = Pick<FitOptions, 'epochs' | 'lr' | 'batchSize' | 'seed' | 'weightDecay' | 'warmupRatio' | 'schedule' | 'maxGradNorm'>;

export interface ExportRecipeOptions extends RecipeFitSettings {
  engine: RecipeEngine;
  /** A Hugging Face decoder folder. */
  model: string;
  data: string;
  out: string;
  /** Processes the launch script starts per node (default 2). */
  nproc?: number;
  /** Nodes launch.sh runs on (default 1): the recipe's processes are nproc × nnodes. */
  nnodes?: number;
  /** Rows a process runs at once; the rest of its share of a global batch is gradient accumulation (default: its whole share). */
  perRankBatch?: number;
  /** 'plain' (torch only; default for torchrun) or 'peft' (transformers + PEFT; default for accelerate). */
  backend?: 'plain' | 'peft';
  /** accelerate only: train through DeepSpeed ZeRO stage 2 or 3 (ds_config.json beside accelerate_config.yaml). */
  deepspeed?: DeepSpeedStage;
  /** 'lora' (default) or 'dora' (PEFT's LoRA with use_dora); rsLoRA is methodConfig's use_rslora; rank_pattern / alpha_pattern come with fromAdapter (as in lorakit train). */
  method?: RecipeMethod;
  methodConfig: Record<string, unknown>;
  targetModules?: TargetModules;
  fromAdapter?: StartFromAdapter;
  maxTrain?: number;
  maxLen?: number;
}

export interface Recipe {
  format: 'lorakit-recipe/1';
  task: 'causal-lm';
  engine: RecipeEngine;
  backend: 'plain' | 'peft';
  model_dir: string;
  base_model_name_or_path: string;
  seed: number;
  epochs: number;
  steps_per_epoch: number;
  total_steps: number;
  data: { file: string; source: string; examples: number; pad_id: number; max_length: number; labels: string };
  /** The adapter's PEFT config (use_dora, use_rslora, rank_pattern, alpha_pattern as PEFT reads them) and each module's scale. */
  lora: { config: Record<string, unknown>; scales: Record<string, number>; lora_dropout: number };
  optimizer: { kind: 'adamw'; lr: number; betas: [number, number]; eps: number; weight_decay: number; fresh: boolean };
  schedule: { kind: 'linear' | 'cosine' | 'constant'; warmup_steps: number; total_steps: number; formula: string };
  clip: { max_grad_norm: number };
  batch: { global_batch: number; world_size: number; per_rank_batch: number; grad_accum_steps: number; split: string };
  /** accelerate + DeepSpeed ZeRO: the stage and the DeepSpeed JSON beside recipe.json. */
  deepspeed?: { zero_stage: 2 | 3; config_file: string };
  loss: { normalization: string };
  /** Per epoch, per step: the example indices of lorakit's global batch. */
  order: number[][][];
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The package root (this file is src/tasks/recipe/ or, built, dist/tasks/recipe/). */
const ROOT = path.resolve(HERE, '../../..');
/** train.py (beside this file in src/), and the repo's reference decoders (plain torch, Hugging Face weight names) it runs. */
const PY_FILES: Record<string, string> = {
  'train.py': path.join(ROOT, 'src/tasks/recipe/train.py'),
  'hf_decoders.py': path.join(ROOT, 'tools/reference/hf_decoders.py'),
  'safetensors_file.py': path.join(ROOT, 'tools/reference/safetensors_file.py'),
};

export async function exportRecipe(o: ExportRecipeOptions): Promise<{ dir: string; recipe: Recipe }> {
  const nproc = o.nproc ?? 2;
  if (!(Number.isInteger(nproc) && nproc >= 1)) throw new Error(`--nproc must be an integer ≥ 1, got ${o.nproc}`);
  const nnodes = o.nnodes ?? 1;
  if (!(Number.isInteger(nnodes) && nnodes >= 1)) throw new Error(`--nnodes must be an integer ≥ 1, got ${o.nnodes}`);
  const world = nproc * nnodes;
  const backend = o.backend ?? (o.engine === 'accelerate' ? 'peft' : 'plain');
  if (o.deepspeed && o.engine !== 'accelerate') throw new Error(`--deepspeed ${o.deepspeed} is an option of --engine accelerate (accelerate's DeepSpeed plugin); got --engine ${o.engine}`);
  if (o.deepspeed && backend !== 'peft') throw new Error(`--deepspeed ${o.deepspeed} trains through transformers + PEFT (DeepSpeed wraps a torch module); drop --backend plain`);
  const loaded = await loadModel(o.model);
  if (loaded.kind !== 'decoder') throw new Error(`export-recipe trains a causal LM: --model must be a decoder folder (GPT-2, Llama, Qwen2, Mistral); '${o.model}' is not`);
  const tok = loaded.tokenizer;
  if (!tok) throw new Error(`${path.join(o.model, 'tokenizer.json')}: not found; the recipe's data are token ids from the folder's own tokenizer`);
  const maxLen = o.maxLen ?? 256;
  let examples = encodeCausalLm(readCausalLmJsonl(o.data), tok, maxLen);
  if (o.maxTrain !== undefined) examples = examples.slice(0, o.maxTrain);
  if (!examples.length) throw new Error(`${o.data}: no example has a completion token left after truncation to ${maxLen} tokens`);
  const model = loaded.model;

  let set: AdapterSet;
  let kept: KeptPeftConfig | undefined;
  if (o.fromAdapter) {
    const start = startFromAdapter(model, o.fromAdapter, { headNames: model.headNames });
    set = start.set;
    kept = start.peft;
  } else {
    const method = getMethod(o.method ?? 'lora');
    set = new AdapterSet(method, method.schema.parse(o.methodConfig), model.sites, model.weights, { targetModules: o.targetModules ?? 'all-linear', headNames: model.headNames, seed: o.seed });
  }
  if (!(RECIPE_METHODS as readonly string[]).includes(set.method.name)) throw new Error(`export-recipe hands LoRA or DoRA to the engine; the adapter is ${set.method.name} (the recipe's train.py implements ${RECIPE_METHODS.join(' and ')} only)`);
  if (set.baseOverrides.size) throw new Error('export-recipe: this LoRA init changes the base weights (PiSSA / OLoRA); the engine would train on the original ones. Save it converted to LoRA first, or use another --init-lora-weights');
  if ((set.options.bias ?? 'none') !== 'none') throw new Error(`export-recipe: bias '${set.options.bias}' is not supported (the recipe trains lora_A / lora_B only)`);

  fs.mkdirSync(o.out, { recursive: true });
  const adapterDir = path.join(o.out, 'adapter0');
  saveAdapter(adapterDir, set, { baseModel: peftBaseModelName(loaded), taskType: 'CAUSAL_LM', peftConfig: kept, extra: { task: 'causal-lm', data: path.resolve(o.data), max_length: maxLen, base_model_dir: path.resolve(loaded.dir), recipe_step: 0 } });
  const scales: Record<string, number> = {};
  let dropout = 0;
  for (const site of set.targets) {
    const c = set.configFor(site) as LoraConfig;
    scales[site.name] = loraScaling(c);
    dropout = c.lora_dropout;
  }

  const lengths = examples.map((e) => e.ids.length);
  const order = Array.from({ length: o.epochs }, (_, e) => lengthGroupedBatches(lengths, o.batchSize, new Rng(o.seed).fork(`epoch-${e}`)));
  const stepsPerEpoch = order[0].length;
  const totalSteps = stepsPerEpoch * o.epochs;
  const share = Math.ceil(Math.min(o.batchSize, examples.length) / world);
  const perRank = Math.min(o.perRankBatch ?? share, share);
  const kind = o.schedule ?? 'linear';
  const recipe: Recipe = {
    format: 'lorakit-recipe/1',
    task: 'causal-lm',
    engine: o.engine,
    backend,
    model_dir: path.resolve(loaded.dir),
    base_model_name_or_path: peftBaseModelName(loaded),
    seed: o.seed,
    epochs: o.epochs,
    steps_per_epoch: stepsPerEpoch,
    total_steps: totalSteps,
    data: {
      file: 'data.json', source: path.resolve(o.data), examples: examples.length, pad_id: tok.padTokenId ?? tok.eosTokenId ?? 0, max_length: maxLen,
      labels: 'HF labels: the token ids from prompt_length on, -100 on the prompt and on padding; EOS appended; shifted by one in the loss',
    },
    lora: { config: JSON.parse(fs.readFileSync(path.join(adapterDir, CONFIG_FILE), 'utf8')), scales, lora_dropout: dropout },
    optimizer: { kind: 'adamw', lr: o.lr, betas: [0.9, 0.999], eps: 1e-8, weight_decay: o.weightDecay ?? 0.01, fresh: true },
    schedule: {
      kind, warmup_steps: Math.round((o.warmupRatio ?? 0.06) * totalSteps), total_steps: totalSteps,
      formula: "transformers' get_" + kind + '_schedule_with_warmup as a LambdaLR multiplier: step k (0-based) uses lr · λ(k)',
    },
    clip: { max_grad_norm: o.maxGradNorm ?? 0 },
    batch: {
      global_batch: o.batchSize, world_size: world, per_rank_batch: perRank, grad_accum_steps: Math.ceil(share / perRank),
      split: 'row i of a global batch goes to rank i % world_size; a rank runs its rows per_rank_batch at a time and accumulates',
    },
    ...(o.deepspeed ? { deepspeed: { zero_stage: o.deepspeed === 'zero3' ? 3 as const : 2 as const, config_file: DS_CONFIG_FILE } } : {}),
    loss: { normalization: "token mean over the global batch: each micro-batch's summed cross-entropy / the global batch's count of predicted tokens, gradients summed over ranks (all_reduce SUM)" },
    order,
  };
  writeFileAtomic(path.join(o.out, 'data.json'), JSON.stringify({ examples: examples.map((e) => ({ ids: e.ids, prompt_length: e.promptLength ?? 0 })) }) + '\n');
  writeFileAtomic(path.join(o.out, 'recipe.json'), JSON.stringify(recipe, null, 1) + '\n');
  for (const [f, src] of Object.entries(PY_FILES)) {
    if (!fs.existsSync(src)) throw new Error(`${src}: missing from this lorakit installation (the recipe's Python side)`);
    fs.copyFileSync(src, path.join(o.out, f));
  }
  writeFileAtomic(path.join(o.out, 'launch.sh'), launchScript(o.engine, nproc, nnodes, recipe.backend, recipe.deepspeed !== undefined));
  fs.chmodSync(path.join(o.out, 'launch.sh'), 0o755);
  if (o.engine === 'accelerate') writeFileAtomic(path.join(o.out, 'accelerate_config.yaml'), accelerateConfig(nproc, nnodes, recipe.deepspeed !== undefined));
  if (recipe.deepspeed) writeFileAtomic(path.join(o.out, DS_CONFIG_FILE), JSON.stringify(deepSpeedConfig({ stage: recipe.deepspeed.zero_stage, perRankBatch: perRank, gradAccumSteps: recipe.batch.grad_accum_steps, maxGradNorm: recipe.clip.max_grad_norm }), null, 1) + '\n');
  return { dir: o.out, recipe };
}
