// How closely an exported recipe replays lorakit's own run: the same flags
// through `lorakit train` (ONNX Runtime, float32) and through the recipe's
// train.py (plain torch on the reference decoders) on 1 process in float32
// and float64 and on N processes (gloo, launch.sh); per-step losses, the
// largest difference to lorakit's, the adapters' largest difference, wall time.
// Prints the Markdown table docs/recipes.md shows.
//
//   npx tsx bench/recipe_replay.ts [--model test/fixtures/hf/llama-tiny] [--epochs 3] [--nproc 2] [--use-dora] [--use-rslora] [--python /usr/bin/python3] [--smoke]
// --smoke: 1 epoch (needs torch, as every run of this bench).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readSafetensors } from '../src/io/safetensors.ts';
import { exportRecipe } from '../src/tasks/recipe/export.ts';
import { runTrainJob } from '../src/tasks/train.ts';
import { STORY } from '../test/helpers/story.ts';

const arg = (k: string, d: string) => {
  const i = process.argv.indexOf(k);
  return i > 0 ? process.argv[i + 1] : d;
};
const model = arg('--model', 'test/fixtures/hf/llama-tiny');
const epochs = Number(arg('--epochs', process.argv.includes('--smoke') ? '1' : '3'));
const nproc = Number(arg('--nproc', '2'));
const PY = arg('--python', '/usr/bin/python3');

// The tests' six records and one more.
const RECORDS = [...STORY, { prompt: 'what colour is the sky', completion: 'blue, mostly' }];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-recipe-bench-'));
const data = path.join(dir, 'data.jsonl');
fs.writeFileSync(data, RECORDS.map((r) => JSON.stringify(r)).join('\n') + '\n');
const method = process.argv.includes('--use-dora') ? 'dora' as const : 'lora' as const;
const flags = { model, data, epochs, lr: 0.01, batchSize: 4, seed: 7, warmupRatio: 0.2, maxGradNorm: 1, method, methodConfig: { r: 8, lora_alpha: 16, ...(process.argv.includes('--use-rslora') && { use_rslora: true }) } };
const R = path.join(dir, 'R');
const { recipe } = await exportRecipe({ ...flags, engine: 'torchrun', out: R, nproc });

const timed = <T>(f: () => T): [T, number] => {
  const t0 = performance.now();
  const r = f();
  return [r, (performance.now() - t0) / 1000];
};
const t0 = performance.now();
await runTrainJob({ ...flags, task: 'causal-lm', out: path.join(dir, 'lorakit'), threads: 1 });
const lorakitSeconds = (performance.now() - t0) / 1000;
const losses = (f: string) => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.event === 'step').map((r) => r.loss as number);
const want = losses(path.join(dir, 'lorakit', 'metrics.jsonl'));

const run = (args: string[], env: Record<string, string> = {}) => {
  const r = spawnSync(args[0], args.slice(1), { encoding: 'utf8', env: { ...process.env, PYTHON: PY, OMP_NUM_THREADS: '1', ...env } });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
};
const rows: { name: string; dir: string; seconds: number }[] = [];
for (const dtype of ['float32', 'float64']) {
  const out = path.join(R, `one-${dtype}`);
  rows.push({ name: `train.py, 1 process, ${dtype}`, dir: out, seconds: timed(() => run([PY, path.join(R, 'train.py'), '--out', out, '--dtype', dtype]))[1] });
}
rows.push({ name: `launch.sh (torchrun), ${nproc} processes, gloo, float32`, dir: path.join(R, 'out'), seconds: timed(() => run(['sh', path.join(R, 'launch.sh')], { MASTER_PORT: '29731' }))[1] });

const tensors = (d: string) => readSafetensors(path.join(d, 'adapter_model.safetensors')).tensors;
const ref = tensors(path.join(dir, 'lorakit', 'adapter'));
const adapterDiff = (d: string) => {
  let m = 0;
  for (const [k, t] of tensors(d)) t.data.forEach((x, i) => { m = Math.max(m, Math.abs(Number(x) - Number(ref.get(k)!.data[i]))); });
  return m;
};
console.log(`${path.basename(model)}, ${recipe.data.examples} examples, global batch ${flags.batchSize}, ${recipe.total_steps} steps (warmup ${recipe.schedule.warmup_steps}, linear decay), ${method === 'dora' ? 'DoRA' : 'LoRA'} r 8${flags.methodConfig.use_rslora ? ' (rsLoRA)' : ''} all-linear, AdamW lr 0.01, clip 1\n`);
console.log(`| run | largest loss difference to lorakit (per step) | largest adapter difference to lorakit's | wall s |`);
console.log('|---|---|---|---|');
console.log(`| lorakit train (ONNX Runtime, float32) | — | — | ${lorakitSeconds.toFixed(1)} |`);
for (const r of rows) {
  const got = losses(path.join(r.dir, 'metrics.jsonl'));
  const d = Math.max(...got.map((l, i) => Math.abs(l - want[i])));
  console.log(`| ${r.name} | ${d.toExponential(1)} | ${adapterDiff(path.join(r.dir, 'adapter')).toExponential(1)} | ${r.seconds.toFixed(1)} |`);
}
console.log(`\nlorakit's per-step losses: ${want.map((l) => l.toFixed(6)).join(', ')}`);
