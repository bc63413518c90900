// Pins what real PEFT does with an exported recipe: `lorakit export-recipe`
// on the llama-tiny fixture, then the recipe's transformers + PEFT path
// (PeftModel.from_pretrained(adapter0, is_trainable=True), torch's AdamW)
// through launch.sh on 2 processes, with torchrun and with accelerate. Writes
// test/fixtures/recipe_peft.json: the flags, and per engine the per-step
// losses and the trained adapter's tensors. test/recipe_peft.test.ts runs the
// recipe's plain-torch path (no Hugging Face packages) against it.
//
// Needs the offline PEFT environment (../shared/tools/peft-env: build it as its README says):
//   npx tsx tools/reference/recipe_peft.ts /path/to/peft-env
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { exportRecipe } from '../../src/tasks/recipe/export.ts';

const env = path.resolve(process.argv[2] ?? '../shared/tools/peft-env');
const runSh = path.join(env, 'run.sh');
if (!fs.existsSync(runSh)) throw new Error(`${runSh}: not found; give the peft-env folder (built) as the first argument`);
const REPO = path.resolve(import.meta.dirname, '../..');

export const RECIPE_PEFT_DATA = [
  { prompt: 'once upon a time', completion: 'there lived a king' },
  { prompt: 'what is this', completion: 'a good movie' },
  { prompt: 'who was there', completion: 'the queen and the king' },
  { text: 'hello world, i love music' },
  { prompt: 'where is it', completion: 'far away' },
];
const flags = { epochs: 2, lr: 0.02, batchSize: 4, seed: 11, warmupRatio: 0.25, maxGradNorm: 1, methodConfig: { r: 2, lora_alpha: 4 }, targetModules: ['q_proj', 'v_proj'] };

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'recipe-peft-'));
const data = path.join(dir, 'data.jsonl');
fs.writeFileSync(data, RECIPE_PEFT_DATA.map((r) => JSON.stringify(r)).join('\n') + '\n');
const engines: Record<string, unknown> = {};
for (const engine of ['torchrun', 'accelerate'] as const) {
  const R = path.join(dir, engine);
  await exportRecipe({ ...flags, engine, backend: 'peft', model: path.join(REPO, 'test/fixtures/hf/llama-tiny'), data, out: R, nproc: 2 });
  const r = spawnSync('sh', [path.join(R, 'launch.sh')], { encoding: 'utf8', env: { ...process.env, PYTHON: runSh, MASTER_PORT: engine === 'torchrun' ? '29821' : '29822' } });
  if (r.status !== 0) throw new Error(`${engine}: ${r.stdout}\n${r.stderr}`);
  const losses = fs.readFileSync(path.join(R, 'out', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).loss);
  const digests = [0, 1].map((k) => fs.readFileSync(path.join(R, 'out', `rank${k}.sha256`), 'utf8').trim());
  if (digests[0] !== digests[1]) throw new Error(`${engine}: the ranks ended with different adapters`);
  const t = readSafetensors(path.join(R, 'out', 'adapter', 'adapter_model.safetensors')).tensors;
  engines[engine] = { losses, tensors: Object.fromEntries([...t].map(([k, v]) => [k, { shape: v.shape, data: [...v.data].map(Number) }])) };
  console.log(`${engine} + PEFT, 2 processes: losses ${losses.map((l: number) => l.toFixed(6)).join(', ')}`);
}
const versions = spawnSync(runSh, ['-c', 'import torch, peft, transformers, accelerate; print(f"torch {torch.__version__}, peft {peft.__version__}, transformers {transformers.__version__}, accelerate {accelerate.__version__}")'], { encoding: 'utf8' }).stdout.trim();
const out = path.join(REPO, 'test/fixtures/recipe_peft.json');
fs.writeFileSync(out, JSON.stringify({ generator: 'tools/reference/recipe_peft.ts', versions, data: RECIPE_PEFT_DATA, flags, engines }) + '\n');
console.log(`${out} (${versions})`);
