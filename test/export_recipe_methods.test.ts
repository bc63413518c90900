// export-recipe beyond plain LoRA, through the recipe's plain-torch path
// (tools/reference/hf_decoders.py; train.py's DoRA written from the DoRA paper's
// decomposition as PEFT applies it): a fresh DoRA with rsLoRA scaling
// (--use-dora --use-rslora), and a LoRA real PEFT made with rank_pattern /
// alpha_pattern / rsLoRA continued with --from-adapter. Each: one process
// replays lorakit's per-step losses, 2 gloo processes end where one does
// (DoRA), the adapter equals the one real PEFT trained from the same recipe
// (test/fixtures/recipe_peft.json), and lorakit loads it with torch's logits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireTorch, torchSkip } from './helpers/torch.ts';
import { assertProbeLogits, FIX, runRecipe, maxDiffToPinned, maxTensorDiff, pinnedPeft as pinned, stepLosses, writePeftStart, writePinnedData } from './helpers/recipe.ts';
import { exportRecipe } from '../src/tasks/recipe/export.ts';
import { runTrainJob } from '../src/tasks/train.ts';

const MODEL = path.join(FIX, 'hf/llama-tiny');
const LOSS_TOL = 2e-6;

test('export-recipe --use-dora --use-rslora: 1 process = lorakit step by step = 2 gloo processes = real PEFT; lorakit loads the result', { skip: torchSkip }, async () => {
  requireTorch();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-recipe-dora-'));
  const c = pinned.methods['dora-rslora'];
  const flags = { ...c.flags, model: MODEL, data: writePinnedData(dir) };
  const R = path.join(dir, 'R');
  const { recipe } = await exportRecipe({ ...flags, engine: 'torchrun', out: R, nproc: 2 });
  assert.equal(recipe.lora.config.use_dora, true);
  assert.equal(recipe.lora.config.use_rslora, true);
  assert.ok(Object.values(recipe.lora.scales).every((s) => Math.abs(s - 4 / Math.SQRT2) < 1e-12), 'alpha 4 / sqrt(r 2)');
  const lorakit = path.join(dir, 'lorakit');
  await runTrainJob({ ...flags, task: 'causal-lm', out: lorakit, threads: 1 });
  const want = stepLosses(path.join(lorakit, 'metrics.jsonl'));
  runRecipe([path.join(R, 'train.py'), '--out', path.join(R, 'one')]);
  runRecipe(['sh', path.join(R, 'launch.sh'), '--probe'], { MASTER_PORT: String(29500 + Math.floor(Math.random() * 2000)) });
  const out = path.join(R, 'out');
  assert.equal(fs.readFileSync(path.join(out, 'rank0.sha256'), 'utf8'), fs.readFileSync(path.join(out, 'rank1.sha256'), 'utf8'), 'both ranks end with the same adapter');
  for (const run of [path.join(R, 'one'), out]) {
    const got = stepLosses(path.join(run, 'metrics.jsonl'));
    assert.equal(got.length, want.length);
    got.forEach((l, i) => assert.ok(Math.abs(l - want[i]) < LOSS_TOL, `${path.basename(run)} step ${i + 1}: loss ${l}, lorakit ${want[i]}`));
  }
  assert.ok(maxTensorDiff(path.join(R, 'one', 'adapter'), path.join(out, 'adapter')) < 1e-6, '2 processes = 1 process');
  const moved = maxTensorDiff(path.join(R, 'adapter0'), path.join(out, 'adapter'));
  assert.ok(moved > 1e-3, `training moved the adapter (${moved})`);
  const d = maxDiffToPinned(path.join(out, 'adapter'), c.engines.torchrun.tensors);
  assert.ok(d < 1e-6, `plain torch vs real PEFT (DoRA): ${d}`);
  await assertProbeLogits(MODEL, out);
});

test('export-recipe --from-adapter on a PEFT LoRA with rank_pattern / alpha_pattern / rsLoRA: 1 process = lorakit train --from-adapter = real PEFT; lorakit loads the result', { skip: torchSkip }, async () => {
  requireTorch();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-recipe-patterns-'));
  const c = pinned.methods.patterns;
  const flags = { ...c.flags, model: MODEL, data: writePinnedData(dir), fromAdapter: { dir: writePeftStart(path.join(dir, 'start')) } };
  const R = path.join(dir, 'R');
  const { recipe } = await exportRecipe({ ...flags, engine: 'torchrun', out: R, nproc: 1 });
  const scales = Object.entries(recipe.lora.scales);
  // PEFT's keys match the end of a module path: v_proj r 4 (4 / 2), down_proj alpha 12 (12 / √2), the rest 4 / √2.
  for (const [name, s] of scales) assert.ok(Math.abs(s - (name.endsWith('v_proj') ? 2 : name.endsWith('down_proj') ? 12 / Math.SQRT2 : 4 / Math.SQRT2)) < 1e-12, `${name}: scale ${s}`);
  assert.equal(scales.length, 6);
  const lorakit = path.join(dir, 'lorakit');
  await runTrainJob({ ...flags, method: 'lora', task: 'causal-lm', out: lorakit, threads: 1 });
  const want = stepLosses(path.join(lorakit, 'metrics.jsonl'));
  runRecipe([path.join(R, 'train.py'), '--probe']);
  const out = path.join(R, 'out');
  const got = stepLosses(path.join(out, 'metrics.jsonl'));
  assert.equal(got.length, want.length);
  got.forEach((l, i) => assert.ok(Math.abs(l - want[i]) < LOSS_TOL, `step ${i + 1}: loss ${l}, lorakit ${want[i]}`));
  const d = maxDiffToPinned(path.join(out, 'adapter'), c.engines.torchrun.tensors);
  assert.ok(d < 1e-6, `plain torch vs real PEFT (rank_pattern / alpha_pattern): ${d}`);
  await assertProbeLogits(MODEL, out);
});
