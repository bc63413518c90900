// An exported recipe against real PEFT: test/fixtures/recipe_peft.json holds
// what the recipe's transformers + PEFT path did on 2 processes, with torchrun
// and with accelerate (tools/reference/recipe_peft.ts, in the offline PEFT
// 0.20 environment). Here (no Hugging Face packages): lorakit's own run with
// the same flags takes PEFT's steps, and the recipe's plain-torch path ends
// with PEFT's adapter. Besides plain LoRA: DoRA with rsLoRA scaling, and a
// LoRA PEFT itself made with rank_pattern / alpha_pattern / rsLoRA, continued
// (lorakit train --from-adapter).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PY, requireTorch, torchSkip } from './helpers/torch.ts';
import { FIX, maxDiffToPinned, pinnedPeft as pinned, stepLosses, writePeftStart, writePinnedData } from './helpers/recipe.ts';
import { exportRecipe } from '../src/tasks/recipe/export.ts';
import { runTrainJob, silentUi, type JobUi } from '../src/tasks/train.ts';

const ENGINES = ['torchrun', 'accelerate'];
const LOSS_TOL = 2e-6;

function setup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-recipe-peft-'));
  const data = writePinnedData(dir);
  return { dir, data, flags: { ...pinned.flags, model: path.join(FIX, 'hf/llama-tiny'), data } };
}

/** lorakit train with a case's flags: its per-step losses against PEFT's on both engines, its adapter against PEFT's. */
async function lorakitTakesPeftsSteps(flags: Record<string, any>, engines: Record<string, { losses: number[]; tensors: any }>, out: string, what: string) {
  const seen: number[] = [];
  const ui: JobUi = { ...silentUi, step: (s) => seen.push(s.loss) };
  await runTrainJob({ method: 'lora', ...flags, task: 'causal-lm', out, threads: 1 } as Parameters<typeof runTrainJob>[0], ui);
  for (const e of ENGINES) {
    const want = engines[e].losses;
    assert.equal(seen.length, want.length);
    want.forEach((l, i) => assert.ok(Math.abs(seen[i] - l) < LOSS_TOL, `${what}, ${e} + PEFT step ${i + 1}: ${l}, lorakit ${seen[i]}`));
    const d = maxDiffToPinned(path.join(out, 'adapter'), engines[e].tensors);
    assert.ok(d < 1e-5, `${what}, ${e}: lorakit's adapter differs from PEFT's by ${d}`);
  }
}

test("lorakit train takes real PEFT's steps (torchrun and accelerate, 2 processes) with the recipe's flags", async () => {
  const { dir, flags } = setup();
  await lorakitTakesPeftsSteps(flags, pinned.engines, path.join(dir, 'lorakit'), 'LoRA');
});

test("DoRA + rsLoRA, and PEFT's own LoRA with rank_pattern / alpha_pattern continued: lorakit takes PEFT's steps", async () => {
  const { dir, data } = setup();
  const model = path.join(FIX, 'hf/llama-tiny');
  const dora = pinned.methods['dora-rslora'];
  await lorakitTakesPeftsSteps({ ...dora.flags, model, data }, dora.engines, path.join(dir, 'dora'), 'DoRA + rsLoRA');
  const patterns = pinned.methods.patterns;
  const start = writePeftStart(path.join(dir, 'peft-start'));
  await lorakitTakesPeftsSteps({ ...patterns.flags, model, data, fromAdapter: { dir: start } }, patterns.engines, path.join(dir, 'patterns'), 'rank_pattern / alpha_pattern');
});

test("the recipe's plain-torch path ends with the adapter real PEFT trained", { skip: torchSkip }, async () => {
  requireTorch();
  const { dir, flags } = setup();
  const R = path.join(dir, 'R');
  await exportRecipe({ ...flags, engine: 'torchrun', out: R, nproc: 1 });
  const r = spawnSync(PY, [path.join(R, 'train.py')], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  assert.equal(r.status, 0, r.stderr);
  const losses = stepLosses(path.join(R, 'out', 'metrics.jsonl'));
  for (const e of ENGINES) {
    pinned.engines[e].losses.forEach((l: number, i: number) => assert.ok(Math.abs(losses[i] - l) < LOSS_TOL, `${e} + PEFT step ${i + 1}: ${l}, plain torch ${losses[i]}`));
    const d = maxDiffToPinned(path.join(R, 'out', 'adapter'), pinned.engines[e].tensors);
    assert.ok(d < 1e-6, `${e}: the plain-torch adapter differs from PEFT's by ${d}`);
  }
});
