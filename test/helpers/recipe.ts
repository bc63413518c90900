// Shared by the export-recipe tests: per-step losses of a run folder, the
// largest tensor difference of two adapter folders, the PEFT runs pinned in
// test/fixtures/recipe_peft.json (tools/reference/recipe_peft.ts), and PEFT's
// own start adapter of its `patterns` case written back as a folder, and the
// check that lorakit loads a returned adapter with torch's logits.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';
import { loadDecoder } from '../../src/models/load_decoder.ts';
import { padBatch, PeftModel } from '../../src/serve/peft_model.ts';
import { PY } from './torch.ts';

export const FIX = new URL('../fixtures/', import.meta.url).pathname;

/** Runs a recipe's Python (`[script, ...args]`) or its launcher (`['sh', 'launch.sh', ...]`) single-threaded; a failure shows its output. */
export function runRecipe(args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  const sh = args[0] === 'sh';
  const r = spawnSync(sh ? 'sh' : PY, sh ? args.slice(1) : args, { encoding: 'utf8', env: { ...process.env, PYTHON: PY, OMP_NUM_THREADS: '1', ...env } });
  assert.equal(r.status, 0, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
  return r;
}
export const pinnedPeft = JSON.parse(fs.readFileSync(path.join(FIX, 'recipe_peft.json'), 'utf8'));

export type PinnedTensors = Record<string, { shape: number[]; data: number[] }>;

export const stepLosses = (file: string): number[] =>
  fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.event === 'step').map((r) => r.loss as number);

export const adapterTensors = (dir: string) => readSafetensors(path.join(dir, 'adapter_model.safetensors')).tensors;

export function maxTensorDiff(a: string, b: string): number {
  const ta = adapterTensors(a), tb = adapterTensors(b);
  assert.deepEqual([...ta.keys()].sort(), [...tb.keys()].sort());
  let m = 0;
  for (const [k, t] of ta) t.data.forEach((x, i) => { m = Math.max(m, Math.abs(Number(x) - Number(tb.get(k)!.data[i]))); });
  return m;
}

/** Largest difference of an adapter folder's tensors to pinned ones (the same names required). */
export function maxDiffToPinned(dir: string, want: PinnedTensors): number {
  const t = adapterTensors(dir);
  assert.deepEqual([...t.keys()].sort(), Object.keys(want).sort());
  let m = 0;
  for (const [k, p] of Object.entries(want)) p.data.forEach((x, i) => { m = Math.max(m, Math.abs(x - Number(t.get(k)!.data[i]))); });
  return m;
}

/** The pinned data as a JSONL file in `dir`. */
export function writePinnedData(dir: string): string {
  const data = path.join(dir, 'data.jsonl');
  fs.writeFileSync(data, pinnedPeft.data.map((r: object) => JSON.stringify(r)).join('\n') + '\n');
  return data;
}

/** PEFT's LoRA with rank_pattern / alpha_pattern / rsLoRA (get_peft_model + save_pretrained), as its folder. */
export function writePeftStart(dir: string): string {
  const { config, tensors } = pinnedPeft.methods.patterns.start as { config: object; tensors: PinnedTensors };
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify(config, null, 2) + '\n');
  writeSafetensors(path.join(dir, 'adapter_model.safetensors'), Object.fromEntries(Object.entries(tensors).map(([k, v]) => [k, { shape: v.shape, data: Float32Array.from(v.data) }])), { format: 'pt' });
  return dir;
}

/** lorakit loads the adapter a recipe returned (`<out>/adapter`) on `modelDir`, and its logits are the ones torch wrote (train.py --probe). */
export async function assertProbeLogits(modelDir: string, out: string): Promise<void> {
  const pm = new PeftModel(await loadDecoder(modelDir), { threads: 1 });
  try {
    pm.loadAdapter(path.join(out, 'adapter'));
    const probe = JSON.parse(fs.readFileSync(path.join(out, 'probe_logits.json'), 'utf8'));
    const logits = (await pm.run(padBatch([probe.ids]))).data as Float32Array;
    assert.equal(logits.length, probe.logits.length);
    const d = Math.max(...probe.logits.map((x: number, i: number) => Math.abs(x - logits[i])));
    assert.ok(d < 1e-4, `lorakit vs torch logits: max |Δ| ${d}`);
  } finally {
    await pm.release();
  }
}
