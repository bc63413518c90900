// Pins what real PEFT does with an exported recipe: `lorakit export-recipe`
// on the llama-tiny fixture, then the recipe's transformers + PEFT path
// (PeftModel.from_pretrained(adapter0, is_trainable=True), torch's AdamW)
// through launch.sh on 2 processes, with torchrun and with accelerate. Writes
// test/fixtures/recipe_peft.json: the flags, and per engine the per-step
// losses and the trained adapter's tensors. test/recipe_peft.test.ts runs
// lorakit and the recipe's plain-torch path (no Hugging Face packages) against it.
//
// Beside plain LoRA (`engines`), `methods` holds:
//   dora-rslora  a fresh DoRA with rsLoRA scaling (export-recipe --use-dora --use-rslora);
//   patterns     a LoRA that PEFT itself made (get_peft_model with rank_pattern,
//                alpha_pattern, use_rslora; `start` holds its files), continued
//                with export-recipe --from-adapter.
//
// Needs the offline PEFT environment (../shared/tools/peft-env: build it as its README says):
//   npx tsx tools/reference/recipe_peft.ts /path/to/peft-env
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { exportRecipe, type ExportRecipeOptions } from '../../src/tasks/recipe/export.ts';

const env = path.resolve(process.argv[2] ?? '../shared/tools/peft-env');
const runSh = path.join(env, 'run.sh');
if (!fs.existsSync(runSh)) throw new Error(`${runSh}: not found; give the peft-env folder (built) as the first argument`);
const REPO = path.resolve(import.meta.dirname, '../..');
const MODEL = path.join(REPO, 'test/fixtures/hf/llama-tiny');

export const RECIPE_PEFT_DATA = [
  { prompt: 'once upon a time', completion: 'there lived a king' },
  { prompt: 'what is this', completion: 'a good movie' },
  { prompt: 'who was there', completion: 'the queen and the king' },
  { text: 'hello world, i love music' },
  { prompt: 'where is it', completion: 'far away' },
];
const flags = { epochs: 2, lr: 0.02, batchSize: 4, seed: 11, warmupRatio: 0.25, maxGradNorm: 1, methodConfig: { r: 2, lora_alpha: 4 }, targetModules: ['q_proj', 'v_proj'] };
const TARGETS = ['q_proj', 'v_proj', 'down_proj'];
const methodFlags = {
  'dora-rslora': { ...flags, method: 'dora' as const, methodConfig: { r: 2, lora_alpha: 4, use_rslora: true }, targetModules: TARGETS },
  patterns: { ...flags, methodConfig: {} },
};
// PEFT's own LoRA with per-module rank and alpha, seeded; B drawn too (init_lora_weights=False) so that step 0 is not the base model.
const PEFT_START = `
import sys, torch
from transformers import AutoModelForCausalLM
from peft import LoraConfig, get_peft_model
torch.manual_seed(7)
base = AutoModelForCausalLM.from_pretrained(sys.argv[1], torch_dtype=torch.float32)
cfg = LoraConfig(r=2, lora_alpha=4, target_modules=${JSON.stringify(TARGETS)}, rank_pattern={"v_proj": 4}, alpha_pattern={"down_proj": 12},
                 use_rslora=True, init_lora_weights=False, lora_dropout=0.0, task_type="CAUSAL_LM")
get_peft_model(base, cfg).save_pretrained(sys.argv[2])
`;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'recipe-peft-'));
const data = path.join(dir, 'data.jsonl');
fs.writeFileSync(data, RECIPE_PEFT_DATA.map((r) => JSON.stringify(r)).join('\n') + '\n');
const tensorsOf = (d: string) => Object.fromEntries([...readSafetensors(path.join(d, 'adapter_model.safetensors')).tensors].map(([k, v]) => [k, { shape: v.shape, data: [...v.data].map(Number) }]));

let port = 29821;
async function train(name: string, o: Omit<ExportRecipeOptions, 'engine' | 'out' | 'model' | 'data'>): Promise<Record<string, unknown>> {
  const engines: Record<string, unknown> = {};
  for (const engine of ['torchrun', 'accelerate'] as const) {
    const R = path.join(dir, `${name}-${engine}`);
    await exportRecipe({ ...o, engine, backend: 'peft', model: MODEL, data, out: R, nproc: 2 });
    const r = spawnSync('sh', [path.join(R, 'launch.sh')], { encoding: 'utf8', env: { ...process.env, PYTHON: runSh, MASTER_PORT: String(port++) } });
    if (r.status !== 0) throw new Error(`${name}, ${engine}: ${r.stdout}\n${r.stderr}`);
    const losses = fs.readFileSync(path.join(R, 'out', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).loss);
    const digests = [0, 1].map((k) => fs.readFileSync(path.join(R, 'out', `rank${k}.sha256`), 'utf8').trim());
    if (digests[0] !== digests[1]) throw new Error(`${name}, ${engine}: the ranks ended with different adapters`);
    engines[engine] = { losses, tensors: tensorsOf(path.join(R, 'out', 'adapter')) };
    console.log(`${name}: ${engine} + PEFT, 2 processes: losses ${losses.map((l: number) => l.toFixed(6)).join(', ')}`);
  }
  return engines;
}

const engines = await train('lora', flags);
const start = path.join(dir, 'peft-start');
const made = spawnSync(runSh, ['-c', PEFT_START, MODEL, start], { encoding: 'utf8' });
if (made.status !== 0) throw new Error(`PEFT's start adapter: ${made.stderr}`);
const methods = {
  'dora-rslora': { flags: methodFlags['dora-rslora'], engines: await train('dora-rslora', methodFlags['dora-rslora']) },
  patterns: {
    flags: methodFlags.patterns,
    // base_model_name_or_path: the fixture's folder name, not this machine's path (lorakit is given --model).
    start: { config: { ...JSON.parse(fs.readFileSync(path.join(start, 'adapter_config.json'), 'utf8')), base_model_name_or_path: 'llama-tiny' }, tensors: tensorsOf(start) },
    engines: await train('patterns', { ...methodFlags.patterns, fromAdapter: { dir: start } }),
  },
};
const versions = spawnSync(runSh, ['-c', 'import torch, peft, transformers, accelerate; print(f"torch {torch.__version__}, peft {peft.__version__}, transformers {transformers.__version__}, accelerate {accelerate.__version__}")'], { encoding: 'utf8' }).stdout.trim();
const out = path.join(REPO, 'test/fixtures/recipe_peft.json');
fs.writeFileSync(out, JSON.stringify({ generator: 'tools/reference/recipe_peft.ts', versions, data: RECIPE_PEFT_DATA, flags, engines, methods }) + '\n');
console.log(`${out} (${versions})`);
