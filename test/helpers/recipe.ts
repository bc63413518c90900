// Shared by the export-recipe tests: per-step losses of a run folder, the
// largest tensor difference of two adapter folders, the PEFT runs pinned in
// test/fixtures/recipe_peft.json (tools/reference/recipe_peft.ts), and PEFT's
// own start adapter of its `patterns` case written back as a folder.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';

export const FIX = new URL('../fixtures/', import.meta.url).pathname;
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
