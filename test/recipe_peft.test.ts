// An exported recipe against real PEFT: test/fixtures/recipe_peft.json holds
// what the recipe's transformers + PEFT path did on 2 processes, with torchrun
// and with accelerate (tools/reference/recipe_peft.ts, in the offline PEFT
// 0.20 environment). Here (no Hugging Face packages): lorakit's own run with
// the same flags takes PEFT's steps, and the recipe's plain-torch path ends
// with PEFT's adapter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PY, requireTorch, torchSkip } from './helpers/torch.ts';
import { exportRecipe } from '../src/tasks/recipe/export.ts';
import { runTrainJob, silentUi, type JobUi } from '../src/tasks/train.ts';
import { readSafetensors } from '../src/io/safetensors.ts';

const FIX = new URL('./fixtures/', import.meta.url).pathname;
const pinned = JSON.parse(fs.readFileSync(path.join(FIX, 'recipe_peft.json'), 'utf8'));
const ENGINES = ['torchrun', 'accelerate'];
const LOSS_TOL = 2e-6;

function setup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-recipe-peft-'));
  const data = path.join(dir, 'data.jsonl');
  fs.writeFileSync(data, pinned.data.map((r: object) => JSON.stringify(r)).join('\n') + '\n');
  return { dir, data, flags: { ...pinned.flags, model: path.join(FIX, 'hf/llama-tiny'), data } };
}

test("lorakit train takes real PEFT's steps (torchrun and accelerate, 2 processes) with the recipe's flags", async () => {
  const { dir, flags } = setup();
  const seen: number[] = [];
  const ui: JobUi = { ...silentUi, step: (s) => seen.push(s.loss) };
  await runTrainJob({ ...flags, task: 'causal-lm', method: 'lora', out: path.join(dir, 'lorakit'), threads: 1 }, ui);
  for (const e of ENGINES) {
    const want: number[] = pinned.engines[e].losses;
    assert.equal(seen.length, want.length);
    want.forEach((l, i) => assert.ok(Math.abs(seen[i] - l) < LOSS_TOL, `${e} + PEFT step ${i + 1}: ${l}, lorakit ${seen[i]}`));
  }
  const t = readSafetensors(path.join(dir, 'lorakit', 'adapter', 'adapter_model.safetensors')).tensors;
  for (const e of ENGINES) {
    for (const [k, p] of Object.entries(pinned.engines[e].tensors) as [string, { data: number[] }][]) {
      const d = Math.max(...p.data.map((x, i) => Math.abs(x - Number(t.get(k)!.data[i]))));
      assert.ok(d < 1e-5, `${e}: ${k} differs by ${d}`);
    }
  }
});

test("the recipe's plain-torch path ends with the adapter real PEFT trained", { skip: torchSkip }, async () => {
  requireTorch();
  const { dir, flags } = setup();
  const R = path.join(dir, 'R');
  await exportRecipe({ ...flags, engine: 'torchrun', out: R, nproc: 1 });
  const r = spawnSync(PY, [path.join(R, 'train.py')], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  assert.equal(r.status, 0, r.stderr);
  const losses = fs.readFileSync(path.join(R, 'out', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).loss as number);
  const t = readSafetensors(path.join(R, 'out', 'adapter', 'adapter_model.safetensors')).tensors;
  for (const e of ENGINES) {
    pinned.engines[e].losses.forEach((l: number, i: number) => assert.ok(Math.abs(losses[i] - l) < LOSS_TOL, `${e} + PEFT step ${i + 1}: ${l}, plain torch ${losses[i]}`));
    const keys = Object.keys(pinned.engines[e].tensors).sort();
    assert.deepEqual([...t.keys()].sort(), keys);
    for (const k of keys) {
      const want: number[] = pinned.engines[e].tensors[k].data;
      const d = Math.max(...want.map((x, i) => Math.abs(x - Number(t.get(k)!.data[i]))));
      assert.ok(d < 1e-6, `${e}: ${k} differs by ${d}`);
    }
  }
});
