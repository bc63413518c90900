// `lorakit export-recipe --engine torchrun`: the recipe's plain-torch path
// (the repo's reference Llama in tools/reference/hf_decoders.py, safetensors
// read by hand, torch's own AdamW / clip_grad_norm_ / LambdaLR) trains on 2
// processes with gloo through launch.sh; both ranks end with the same adapter;
// it equals a one-process run; its per-step losses replay lorakit's own run
// with the same flags (float32 on both sides: within 2e-6 of losses near 5.4,
// i.e. ~4e-7 relative); the adapter it writes loads in lorakit with the
// logits torch computed; and a recipe exported --from-adapter continues the
// adapter as `lorakit train --from-adapter` does (both with a fresh AdamW).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireTorch, torchSkip } from './helpers/torch.ts';
import { assertProbeLogits, maxTensorDiff, runRecipe, stepLosses } from './helpers/recipe.ts';
import { exportRecipe } from '../src/tasks/recipe/export.ts';
import { givenConfigFlags } from '../src/cli/method_options.ts';
import { runTrainJob, silentUi, type JobUi } from '../src/tasks/train.ts';
import { STORY } from './helpers/story.ts';

const FIX = new URL('./fixtures/hf/', import.meta.url).pathname;
const LOSS_TOL = 2e-6;

test('export-recipe (torchrun, plain torch): 2 processes with gloo = 1 process = lorakit step by step; the adapter comes back with its logits', { skip: torchSkip }, async () => {
  requireTorch();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-recipe-'));
  const data = path.join(dir, 'story.jsonl');
  fs.writeFileSync(data, STORY.map((r) => JSON.stringify(r)).join('\n') + '\n');
  // 6 examples in global batches of 4: 2 steps an epoch (4 + 2 rows), 4 steps with warmup 1, clipping on.
  const flags = { model: FIX + 'llama-tiny', data, epochs: 2, lr: 0.01, batchSize: 4, seed: 3, warmupRatio: 0.25, maxGradNorm: 1, methodConfig: { r: 4, lora_alpha: 8 } };
  const R = path.join(dir, 'R');
  const { recipe } = await exportRecipe({ ...flags, engine: 'torchrun', out: R, nproc: 2 });
  assert.equal(recipe.total_steps, 4);
  assert.deepEqual(recipe.batch, { ...recipe.batch, global_batch: 4, world_size: 2, per_rank_batch: 2, grad_accum_steps: 1 });
  for (const f of ['adapter0/adapter_config.json', 'adapter0/adapter_model.safetensors', 'data.json', 'recipe.json', 'train.py', 'hf_decoders.py', 'launch.sh']) assert.ok(fs.existsSync(path.join(R, f)), f);
  assert.match(fs.readFileSync(path.join(R, 'launch.sh'), 'utf8'), /torch\.distributed\.run .*--redirects 1 --tee 1 train\.py/);

  const lorakit = path.join(dir, 'lorakit');
  await runTrainJob({ ...flags, task: 'causal-lm', method: 'lora', out: lorakit, threads: 1 });
  const want = stepLosses(path.join(lorakit, 'metrics.jsonl'));
  assert.equal(want.length, 4);

  runRecipe([path.join(R, 'train.py'), '--out', path.join(R, 'one')]);
  runRecipe(['sh', path.join(R, 'launch.sh'), '--probe'], { MASTER_PORT: String(29500 + Math.floor(Math.random() * 2000)) });
  const out = path.join(R, 'out');
  const digests = [0, 1].map((r) => fs.readFileSync(path.join(out, `rank${r}.sha256`), 'utf8'));
  assert.equal(digests[0], digests[1], 'both ranks end with the same adapter');
  for (const run of [path.join(R, 'one'), out]) {
    const got = stepLosses(path.join(run, 'metrics.jsonl'));
    got.forEach((l, i) => assert.ok(Math.abs(l - want[i]) < LOSS_TOL, `${path.basename(run)} step ${i + 1}: loss ${l}, lorakit ${want[i]}`));
  }
  assert.ok(maxTensorDiff(path.join(R, 'one', 'adapter'), path.join(out, 'adapter')) < 1e-6, '2 processes = 1 process');
  assert.ok(maxTensorDiff(path.join(lorakit, 'adapter'), path.join(out, 'adapter')) < 1e-5, "the recipe's adapter = lorakit's");
  assert.ok(maxTensorDiff(path.join(R, 'adapter0'), path.join(out, 'adapter')) > 1e-3, 'training moved the adapter');
  // lorakit's block comes back with the adapter (PEFT's save_pretrained would drop it), saying which steps made it.
  const block = JSON.parse(fs.readFileSync(path.join(out, 'adapter', 'lorakit_config.json'), 'utf8'));
  assert.deepEqual({ task: block.task, max_length: block.max_length, base_model_dir: block.base_model_dir, recipe_step: block.recipe_step, recipe_run: block.recipe_run },
    { task: 'causal-lm', max_length: 256, base_model_dir: path.resolve(FIX + 'llama-tiny'), recipe_step: 4, recipe_run: { engine: 'torchrun', backend: 'plain', processes: 2, dtype: 'float32' } });

  // Back in lorakit: the folder loads, and its logits are torch's.
  await assertProbeLogits(FIX + 'llama-tiny', out);

  // Continuing a saved adapter: the recipe from it and lorakit train --from-adapter take the same steps (fresh AdamW both).
  const more = { ...flags, epochs: 1, fromAdapter: { dir: path.join(lorakit, 'adapter') } };
  const R2 = path.join(dir, 'R2');
  await exportRecipe({ ...more, engine: 'torchrun', out: R2, nproc: 1 });
  const seen: number[] = [];
  const ui: JobUi = { ...silentUi, step: (s) => seen.push(s.loss) };
  await runTrainJob({ ...more, task: 'causal-lm', method: 'lora', out: path.join(dir, 'more'), threads: 1 }, ui);
  runRecipe([path.join(R2, 'train.py')]);
  const replay = stepLosses(path.join(R2, 'out', 'metrics.jsonl'));
  assert.equal(replay.length, 2);
  replay.forEach((l, i) => assert.ok(Math.abs(l - seen[i]) < LOSS_TOL, `from the adapter, step ${i + 1}: recipe ${l}, lorakit ${seen[i]}`));
  assert.ok(seen[0] < want[0] - 1e-3, 'the continued run starts where the first one left off, not from a fresh adapter');
});

test('export-recipe: the accelerate launcher (its torchrun path on the CPU), the CLI summary, and what a recipe cannot carry', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-recipe-cli-'));
  const data = path.join(dir, 'story.jsonl');
  fs.writeFileSync(data, STORY.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const BIN = new URL('../bin/lorakit.js', import.meta.url).pathname;
  const R = path.join(dir, 'R');
  const r = spawnSync(process.execPath, [BIN, 'export-recipe', '--engine', 'accelerate', '--model', FIX + 'gpt2-tiny', '--data', data, '--batch', '5', '--nproc', '2', '--per-rank-batch', '2', '--epochs', '3', '--out', R], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /6 examples, 6 steps \(3 epochs × 2\); global batch 5 = 2 processes × 2 rows × 2 accumulation step\(s\)/);
  const launch = fs.readFileSync(path.join(R, 'launch.sh'), 'utf8');
  assert.match(launch, /ACCELERATE_TORCH_DEVICE=\$\{ACCELERATE_TORCH_DEVICE:-cpu\}/);
  assert.match(launch, /accelerate\.commands\.launch --config_file accelerate_config\.yaml/);
  assert.match(fs.readFileSync(path.join(R, 'accelerate_config.yaml'), 'utf8'), /distributed_type: MULTI_GPU/);
  const recipe = JSON.parse(fs.readFileSync(path.join(R, 'recipe.json'), 'utf8'));
  assert.equal(recipe.backend, 'peft');
  assert.deepEqual(recipe.optimizer, { kind: 'adamw', lr: 2e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0.01, fresh: true });
  assert.equal(recipe.lora.config.peft_type, 'LORA');
  assert.equal(recipe.lora.config.r, 8);
  assert.ok(Object.values(recipe.lora.scales).every((s) => s === 2), 'alpha 16 / r 8');
  // Every example once per epoch, in lorakit's seeded order.
  for (const epoch of recipe.order) assert.deepEqual(epoch.flat().sort(), [0, 1, 2, 3, 4, 5]);
  // A VeRA adapter is neither LoRA nor DoRA: refused by name.
  const vera = path.join(dir, 'vera');
  await runTrainJob({ task: 'causal-lm', model: FIX + 'gpt2-tiny', data, method: 'vera', methodConfig: { r: 4 }, epochs: 1, lr: 0.01, batchSize: 8, seed: 1, threads: 1, out: vera });
  await assert.rejects(exportRecipe({ engine: 'torchrun', model: FIX + 'gpt2-tiny', data, out: path.join(dir, 'x'), methodConfig: {}, fromAdapter: { dir: path.join(vera, 'adapter') }, epochs: 1, lr: 0.01, batchSize: 4, seed: 1 }), /the adapter is vera \(the recipe's train\.py implements lora and dora only\)/);
  // --use-dora on an adapter of another method: the flag and the adapter disagree, both named (the CLI's check).
  const given = givenConfigFlags({ useDora: true }, () => undefined, 'dora', {});
  await assert.rejects(exportRecipe({ engine: 'torchrun', model: FIX + 'gpt2-tiny', data, out: path.join(dir, 'z'), methodConfig: {}, fromAdapter: { dir: path.join(vera, 'adapter'), given }, epochs: 1, lr: 0.01, batchSize: 4, seed: 1 }), /--use-dora "dora" but the adapter has method = "vera"/);
  await assert.rejects(exportRecipe({ engine: 'torchrun', model: FIX + 'bert', data, out: path.join(dir, 'y'), methodConfig: {}, epochs: 1, lr: 0.01, batchSize: 4, seed: 1 }), /must be a decoder folder/);
});
