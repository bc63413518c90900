// Pins what accelerate makes of the DeepSpeed files `lorakit export-recipe
// --engine accelerate --deepspeed zero2|zero3` writes. DeepSpeed itself is not
// installed here (nor installable offline), so nothing trains: accelerate 1.2.1's
// own code (tools/reference/accelerate_deepspeed_config.py, in the offline PEFT
// environment) reads accelerate_config.yaml as `accelerate launch` does, builds the
// DeepSpeedPlugin a script gets, and fills the config as Accelerator.prepare does
// before deepspeed.initialize. Writes test/fixtures/recipe_deepspeed.json;
// test/export_recipe_deepspeed.test.ts checks the files written today against it
// and against recipe.json.
//
//   npx tsx tools/reference/recipe_deepspeed.ts /path/to/peft-env
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exportRecipe } from '../../src/tasks/recipe/export.ts';

const env = path.resolve(process.argv[2] ?? '../shared/tools/peft-env');
const runSh = path.join(env, 'run.sh');
if (!fs.existsSync(runSh)) throw new Error(`${runSh}: not found; give the peft-env folder (built) as the first argument`);
const REPO = path.resolve(import.meta.dirname, '../..');

const DATA = [
  { prompt: 'once upon a time', completion: 'there lived a king' },
  { prompt: 'what is this', completion: 'a good movie' },
  { text: 'hello world, i love music' },
  { prompt: 'where is it', completion: 'far away' },
  { prompt: 'how are you', completion: 'fine, thanks' },
];
// Batch 5 on 2 processes in micro-batches of 2: 2 accumulation steps (ZeRO-2, clipping 0.5); 4 on 2 nodes × 2 processes, no clipping (ZeRO-3).
const CASES = [
  { deepspeed: 'zero2' as const, nproc: 2, nnodes: 1, flags: { epochs: 1, lr: 0.01, batchSize: 5, perRankBatch: 2, seed: 5, maxGradNorm: 0.5, methodConfig: { r: 2, lora_alpha: 4 } } },
  { deepspeed: 'zero3' as const, nproc: 2, nnodes: 2, flags: { epochs: 1, lr: 0.01, batchSize: 4, seed: 5, maxGradNorm: 0, methodConfig: { r: 2, lora_alpha: 4 } } },
];

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'recipe-deepspeed-'));
const data = path.join(dir, 'data.jsonl');
fs.writeFileSync(data, DATA.map((r) => JSON.stringify(r)).join('\n') + '\n');
const cases = [];
for (const c of CASES) {
  const R = path.join(dir, c.deepspeed);
  await exportRecipe({ ...c.flags, engine: 'accelerate', deepspeed: c.deepspeed, nproc: c.nproc, nnodes: c.nnodes, model: path.join(REPO, 'test/fixtures/hf/llama-tiny'), data, out: R });
  const r = spawnSync(runSh, [path.join(REPO, 'tools/reference/accelerate_deepspeed_config.py'), R, String(c.nproc * c.nnodes)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${c.deepspeed}: ${r.stdout}\n${r.stderr}`);
  const accelerate = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  cases.push({ ...c, accelerate });
  console.log(`${c.deepspeed}: plugin ${JSON.stringify(accelerate.plugin)}`);
}
const versions = spawnSync(runSh, ['-c', 'import torch, accelerate; print(f"torch {torch.__version__}, accelerate {accelerate.__version__}, deepspeed not installed")'], { encoding: 'utf8' }).stdout.trim();
const out = path.join(REPO, 'test/fixtures/recipe_deepspeed.json');
fs.writeFileSync(out, JSON.stringify({ generator: 'tools/reference/recipe_deepspeed.ts', versions, data: DATA, cases }, null, 1) + '\n');
console.log(`${out} (${versions})`);
