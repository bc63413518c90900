// LoRAM's pruning plan (Zhang et al., "Train Small, Infer Large: Memory-
// Efficient LoRA Training for Large Language Models", ICLR 2025; official code
// junzhang-zj/LoRAM): per pruned layer, the FFN neurons and the KV-head groups
// (a KV head with its num_heads / num_kv_heads query heads) removed. The plan
// is written beside the pruned model (loram.json) and is what recovery reads.
//
// Index conventions are the official code's: an FFN neuron j is row j of
// gate_proj / up_proj and column j of down_proj; KV head h owns the k/v
// features [h·hd, (h+1)·hd) and the q/o features [h·g·hd, (h+1)·g·hd) with
// g = num_heads / num_kv_heads (the official expansion start = kv_start·g,
// length hd·g).

import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../io/atomic.ts';

export const PLAN_FILE = 'loram.json';
export const PLAN_FORMAT = 'lorakit-loram/1';

/** The widths of the model the plan prunes (the original's). */
export interface LoramShape {
  numLayers: number;
  hiddenSize: number;
  intermediateSize: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
}

export interface LayerPlan {
  layer: number;
  /** FFN neurons removed (sorted). */
  ffn_pruned: number[];
  /** KV heads removed with their query heads (sorted). */
  kv_heads_pruned: number[];
}

export type Importance = 'taylor' | 'magnitude' | 'random';

export interface LoramPlan {
  format: typeof PLAN_FORMAT;
  /** The original model: its folder as given to `prune` (absolute) and its widths. */
  original: { model: string; shape: LoramShape };
  importance: Importance;
  ffnRatio: number;
  attnRatio: number;
  seed: number;
  layers: LayerPlan[];
  /** Calibration data of a 'taylor' plan (file, examples, tokens). */
  calibration?: Record<string, unknown>;
}

/** How many of n groups a ratio removes: n − ⌊n·(1 − ratio)⌋ (torch_pruning's MetaPruner count), at most n − 1. */
export function prunedCount(n: number, ratio: number): number {
  if (!(ratio >= 0 && ratio < 1)) throw new Error(`pruning ratio must be in [0, 1), got ${ratio}`);
  return Math.min(n - 1, n - Math.floor(n * (1 - ratio) + 1e-9));
}

/** The `count` lowest-importance indices (ties: the lower index first), sorted. */
export function lowest(importance: ArrayLike<number>, count: number): number[] {
  const idx = Array.from({ length: importance.length }, (_, i) => i);
  idx.sort((a, b) => importance[a] - importance[b] || a - b);
  return idx.slice(0, count).sort((a, b) => a - b);
}

/** 0..n−1 without `removed` (sorted). */
export function keptOf(n: number, removed: readonly number[]): number[] {
  const gone = new Set(removed);
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (!gone.has(i)) out.push(i);
  return out;
}

/** The k/v feature indices of KV heads `heads`. */
export function kvFeatures(heads: readonly number[], headDim: number): number[] {
  return heads.flatMap((h) => Array.from({ length: headDim }, (_, d) => h * headDim + d));
}

/** The q/o feature indices of KV heads `heads` (their query groups), by the official expansion. */
export function qFeatures(heads: readonly number[], headDim: number, numHeads: number, numKvHeads: number): number[] {
  const g = numHeads / numKvHeads;
  return heads.flatMap((h) => Array.from({ length: headDim * g }, (_, d) => h * headDim * g + d));
}

/** Per layer: the kept FFN neurons and KV heads, and the kept feature indices they imply. */
export interface KeptLayer {
  ffn: number[];
  kvHeads: number[];
  kvFeatures: number[];
  qFeatures: number[];
}

export function keptLayer(plan: Pick<LoramPlan, 'original'>, lp: LayerPlan): KeptLayer {
  const s = plan.original.shape;
  const kvHeads = keptOf(s.numKvHeads, lp.kv_heads_pruned);
  return {
    ffn: keptOf(s.intermediateSize, lp.ffn_pruned),
    kvHeads,
    kvFeatures: kvFeatures(kvHeads, s.headDim),
    qFeatures: qFeatures(kvHeads, s.headDim, s.numHeads, s.numKvHeads),
  };
}

/** Checks a plan against the widths it claims (indices in range, sorted, unique, something kept). */
export function checkPlan(plan: LoramPlan, where: string): void {
  if (plan.format !== PLAN_FORMAT) throw new Error(`${where}: format '${(plan as any).format}' is not ${PLAN_FORMAT}`);
  const s = plan.original?.shape;
  if (!s) throw new Error(`${where}: no original.shape`);
  const seen = new Set<number>();
  for (const lp of plan.layers) {
    if (!(Number.isInteger(lp.layer) && lp.layer >= 0 && lp.layer < s.numLayers) || seen.has(lp.layer)) throw new Error(`${where}: layer ${lp.layer} is out of range or listed twice (the model has ${s.numLayers})`);
    seen.add(lp.layer);
    for (const [name, xs, n] of [['ffn_pruned', lp.ffn_pruned, s.intermediateSize], ['kv_heads_pruned', lp.kv_heads_pruned, s.numKvHeads]] as const) {
      if (!Array.isArray(xs) || xs.some((x, i) => !Number.isInteger(x) || x < 0 || x >= n || (i > 0 && x <= xs[i - 1]))) throw new Error(`${where}: layer ${lp.layer} ${name} must be sorted unique indices below ${n}`);
      if (xs.length >= n) throw new Error(`${where}: layer ${lp.layer} ${name} removes all ${n}`);
    }
  }
}

export function readPlan(dir: string): LoramPlan {
  const file = path.join(dir, PLAN_FILE);
  if (!fs.existsSync(file)) throw new Error(`${file}: not found: '${dir}' is not a folder written by \`lorakit loram prune\``);
  let plan: LoramPlan;
  try {
    plan = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  checkPlan(plan, file);
  return plan;
}

export function writePlan(dir: string, plan: LoramPlan): void {
  writeFileAtomic(path.join(dir, PLAN_FILE), JSON.stringify(plan, null, 1) + '\n');
}
