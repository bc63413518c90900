// DyLoRA: a LoRA trained at a random truncation rank b each step (config.ts).
// Keys (lorakit's; PEFT has no DyLoRA): lora_A.weight [r, in], lora_B.weight [out, r].
// The step's b reaches the graph through three shared feeds (hooks.feeds):
//   dylora_live [r]    1 at component b (the one that learns), else 0
//   dylora_frozen [r]  1 at components 1..b−1 (used, detached), else 0
//   dylora_scale [1]   r/b (the two √(r/b) factors), so the scale is α/b
// A_eff = A ⊙ live + stopGradient(A) ⊙ frozen (rows), B_eff likewise (columns).
// Outside training live = 0 and frozen marks 1..b of the evaluation rank.
import * as op from '../../graph/ops.ts';
import type { Graph, Value } from '../../graph/ir.ts';
import { Rng } from '../../util/rng.ts';
import type { AdapterMethod } from '../types.ts';
import { kaimingUniform, loraDelta } from '../lora/index.ts';
import { DyloraConfig, dyloraConfigSchema } from './config.ts';

export const DYLORA_KEYS = { A: 'lora_A.weight', B: 'lora_B.weight' } as const;
export const DYLORA_FEEDS = { live: 'dylora_live', frozen: 'dylora_frozen', scale: 'dylora_scale' } as const;

/** DyLoRA's state per adapter set: the evaluation rank set at run time, an injected draw for tests, the last drawn b. */
export interface DyloraState {
  evalRank: number | null;
  /** b for a training step (default: 1 + Rng(seed).fork('dylora-<step>').int(r), uniform and shared by all layers). */
  draw?: (step: number, r: number, seed: number) => number;
  lastRank: number | null;
}

/** The training step's b: uniform on 1..r, one draw per step (the same b on a resume: it depends on the seed and step only). */
export function drawRank(step: number, r: number, seed: number): number {
  return 1 + new Rng(seed).fork(`dylora-${step}`).int(r);
}

/** Sets the rank every layer of a DyLoRA set uses outside training (1 ≤ b ≤ r); null = r. */
export function setEvalRank(set: { method: AdapterMethod; config: unknown; state: unknown }, b: number | null): void {
  if (set.method.name !== 'dylora') throw new Error(`setEvalRank: the adapter is '${set.method.name}', not dylora`);
  const r = (set.config as DyloraConfig).r;
  if (b !== null && !(Number.isInteger(b) && b >= 1 && b <= r)) throw new Error(`DyLoRA evaluation rank must be an integer in [1, ${r}] (the adapter's r), got ${b}`);
  (set.state as DyloraState).evalRank = b;
}

const evalRankOf = (c: DyloraConfig, st?: DyloraState) => st?.evalRank ?? c.eval_rank ?? c.r;

function masks(r: number, b: number, training: boolean) {
  const live = new Float32Array(r), frozen = new Float32Array(r);
  for (let i = 0; i < b; i++) frozen[i] = 1;
  if (training) {
    frozen[b - 1] = 0;
    live[b - 1] = 1;
  }
  return { live, frozen, scale: Float32Array.of(r / b) };
}

function feedInput(g: Graph, name: string, shape: number[]): Value {
  return g.leaf(name) ?? g.input(name, 'float32', shape);
}

export const dylora: AdapterMethod<DyloraConfig, DyloraState> = {
  name: 'dylora',
  schema: dyloraConfigSchema,
  peft: { peftType: 'DYLORA', onlyBias: 'lora_only', moduleKeys: Object.values(DYLORA_KEYS), describe: (c) => `r ${c.r}` },
  createState: () => ({ evalRank: null, lastRank: null }),

  init({ site, config, rng }) {
    const n = site.inFeatures, m = site.outFeatures, r = config.r;
    if (config.eval_rank !== null && config.eval_rank > r) throw new Error(`DyLoRA: eval_rank ${config.eval_rank} exceeds r ${r}`);
    return [
      { key: DYLORA_KEYS.A, shape: [r, n], data: kaimingUniform(rng, r, n) },
      { key: DYLORA_KEYS.B, shape: [m, r], data: config.init_weights ? new Float32Array(m * r) : kaimingUniform(rng, m, r) },
    ];
  },

  forward({ g, config, p, x, base }) {
    const r = config.r;
    const live = feedInput(g, DYLORA_FEEDS.live, [r]), frozen = feedInput(g, DYLORA_FEEDS.frozen, [r]), scale = feedInput(g, DYLORA_FEEDS.scale, [1]);
    const rows = (v: Value) => op.reshape(v, [r, 1]);
    const A = p[DYLORA_KEYS.A], B = p[DYLORA_KEYS.B];
    const Aeff = op.add(op.mul(A, rows(live)), op.mul(op.stopGradient(A), rows(frozen)));
    const Beff = op.add(op.mul(B, live), op.mul(op.stopGradient(B), frozen));
    const h = op.mul(op.gemm(x, Aeff, { transB: true }), scale);
    return op.gemm(h, Beff, { transB: true, alpha: config.lora_alpha / r }, base);
  },

  deltaWeight(site, config, params, _base, state) {
    const f = dylora.factors!(site, config, params, undefined, state);
    return loraDelta(site.outFeatures, site.inFeatures, f.r, f.scale, f.A, f.B);
  },

  /** The truncation at the evaluation rank b: (α/b)·B[:, :b]·A[:b]. */
  factors(site, config, params, _base, state) {
    const b = evalRankOf(config, state), r = config.r, n = site.inFeatures, m = site.outFeatures;
    const A = params[DYLORA_KEYS.A].slice(0, b * n), B = new Float32Array(m * b);
    for (let i = 0; i < m; i++) for (let k = 0; k < b; k++) B[i * b + k] = params[DYLORA_KEYS.B][i * r + k];
    return { A, B, r: b, scale: config.lora_alpha / b };
  },

  paramCount(site, config) {
    return config.r * (site.inFeatures + site.outFeatures);
  },

  hooks: {
    feeds({ state, config, training, step, seed }) {
      const r = config.r;
      let b: number;
      if (training) {
        b = (state.draw ?? drawRank)(step ?? 0, r, seed ?? 0);
        if (!(Number.isInteger(b) && b >= 1 && b <= r)) throw new Error(`DyLoRA: the drawn rank ${b} is not in [1, ${r}]`);
        state.lastRank = b;
      } else b = evalRankOf(config, state);
      const mk = masks(r, b, training);
      return {
        [DYLORA_FEEDS.live]: { data: mk.live, dims: [r] },
        [DYLORA_FEEDS.frozen]: { data: mk.frozen, dims: [r] },
        [DYLORA_FEEDS.scale]: { data: mk.scale, dims: [1] },
      };
    },
    stepMetrics: ({ state }) => ({ rank: state.lastRank }),
  },
};
