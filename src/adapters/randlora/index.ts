// RandLoRA (Albert et al. 2025, ICLR; official code: HF PEFT `tuners/randlora`):
// full-rank updates from N = ⌈min(in, out)/r⌉ frozen random bases,
//   ΔW = s · Σ_b B_b · diag(λ_b) · A · diag(γ_b),   s = randlora_alpha / r,
// with one shared A [r, min] and B [max, N, r]; trainable λ [r, N] and
// γ [N, min] (PEFT keys `randlora_lambda`, `randlora_gamma`). As in PEFT the
// scaled bases are applied on the smaller dimension and flattened the way PEFT
// flattens them: Â [r·N, min] with row k·N + b = λ[k,b]·A[k]·γ[b], B̂ [max, N·r]
// = B.reshape(max, N·r); y = W0x + s·B̂·Â·x when in ≤ out, else s·Âᵀ·B̂ᵀ·x.
// Bases: PEFT's own (randlora/model.py _init_randlora_A_randlora_B, dense):
// for the largest adapted shape L (elementwise max of [out, in] over the
// targets; min_L, max_L of it, N_L = ⌈min_L/r⌉), with
// torch.Generator().manual_seed(projection_prng_key): A [r, 1, min_L] then N_L
// blocks [max_L, 1, r] concatenated into B [max_L, N_L, r], each
// kaiming_uniform_(a=√5) in bfloat16 (PEFT's choice where accelerate's
// is_bf16_available() holds, CPU included; PEFT versions that test only CUDA
// bf16 use float16 on CPU: not reproduced, such files load by their stored
// bases), then
// A / A.std() and B / B.std() in bfloat16 (src/util/torch_init.ts, bit-exact).
// Each site uses PEFT's slices A[:, 0, :min], B[:max, :N, :]. Saving writes the
// pair (`base_model.randlora_A` / `_B`, PEFT's default save_projection: true);
// a file that holds it (`shared`) is used as stored. The set's state
// (projections.ts) holds the largest shape and any stored pair; called
// without it (one site on its own) the site's own shape is the largest.
// Init: λ = 0, γ = 1/max(N, min) (PEFT reset_randlora_parameters), so ΔW = 0.
import { z } from 'zod';
import * as op from '../../graph/ops.ts';
import type { LinearSite } from '../../models/types.ts';
import type { AdapterMethod } from '../types.ts';
import { frozen, memo } from '../bases.ts';
import { largestFor, projectionGenerator, projectionState, type ProjectionState, type Shape } from '../projections.ts';
import { divBf16, fanIn, kaimingUniformBound, stdBf16, torchUniform } from '../../util/torch_init.ts';

export const randloraConfigSchema = z.object({
  /** Rank of each random basis (PEFT default 32). */
  r: z.number().int().positive().default(32),
  /** s = randlora_alpha / r (PEFT default 640 = 20·r). */
  randlora_alpha: z.number().positive().default(640),
  projection_prng_key: z.number().int().default(0),
  /** true: λ = 0, γ = 1/max(N, min) (ΔW = 0). false: λ ~ N(0, 1) as PEFT's constructor (tests). */
  init_weights: z.boolean().default(true),
});
export type RandloraConfig = z.infer<typeof randloraConfigSchema>;

export function randloraDims(site: LinearSite, c: RandloraConfig) {
  const min = Math.min(site.inFeatures, site.outFeatures), max = Math.max(site.inFeatures, site.outFeatures);
  return { min, max, N: Math.ceil(min / c.r), inIsMin: site.inFeatures <= site.outFeatures };
}

/** PEFT's shared bases for the largest shape L: A [r, 1, min_L], B [max_L, N_L, r] (bfloat16 values). */
export function randloraShared(c: RandloraConfig, L: Shape): { A: Float32Array; B: Float32Array; min: number; max: number; N: number } {
  const min = Math.min(L.out, L.in), max = Math.max(L.out, L.in), N = Math.ceil(min / c.r), r = c.r;
  return memo(`randlora|${c.projection_prng_key}|${r}|${L.out}x${L.in}`, () => {
    const g = projectionGenerator(c.projection_prng_key);
    const draw = (shape: number[]) => {
      const b = kaimingUniformBound(fanIn(shape), Math.sqrt(5));
      return torchUniform(g, shape.reduce((p, d) => p * d, 1), -b, b, { dtype: 'bfloat16' });
    };
    const A = draw([r, 1, min]);
    const B = new Float32Array(max * N * r);
    for (let blk = 0; blk < N; blk++) {
      const d = draw([max, 1, r]); // torch.cat(..., dim=1): block blk is B[:, blk, :]
      for (let i = 0; i < max; i++) B.set(d.subarray(i * r, i * r + r), (i * N + blk) * r);
    }
    return { A: divBf16(A, stdBf16(A)), B: divBf16(B, stdBf16(B)), min, max, N };
  });
}

/** Shared bases: A [r, min], B [max, N·r] (= PEFT's [max, N, r] flattened). */
export function randloraBases(site: LinearSite, c: RandloraConfig, state?: ProjectionState) {
  const { min, max, N } = randloraDims(site, c);
  const saved = state?.saved;
  if (saved) return sliceShared({ A: saved.A.data, B: saved.B.data, min: saved.A.shape[2], N: saved.B.shape[1] }, c.r, min, max, N);
  return sliceShared(randloraShared(c, largestFor(state, site)), c.r, min, max, N);
}

/** A[:, 0, :min] → [r, min] and B[:max, :N, :] → [max, N·r] of a shared pair with row widths minL and NL. */
function sliceShared(s: { A: Float32Array; B: Float32Array; min: number; N: number }, r: number, min: number, max: number, N: number) {
  const A = new Float32Array(r * min), B = new Float32Array(max * N * r);
  for (let k = 0; k < r; k++) A.set(s.A.subarray(k * s.min, k * s.min + min), k * min);
  for (let i = 0; i < max; i++) B.set(s.B.subarray(i * s.N * r, i * s.N * r + N * r), i * N * r);
  return { A, B };
}

export const randlora: AdapterMethod<RandloraConfig, ProjectionState> = {
  name: 'randlora',
  schema: randloraConfigSchema,
  peft: {
    peftType: 'RANDLORA',
    onlyBias: 'randlora_only',
    // PEFT's RandLoraConfig fields lorakit implements at one value (dense bases, no dropout).
    fixed: { randlora_dropout: 0, sparse: false, very_sparse: false },
    moduleKeys: ['randlora_lambda', 'randlora_gamma'],
    fieldsOf: (c) => ({ ...c, save_projection: false, randlora_dropout: 0, sparse: false, very_sparse: false }),
    shared: {
      names: ['randlora_A', 'randlora_B'],
      flag: 'save_projection',
      perModule: true,
      load(state, c, t, sites) {
        const A = t['randlora_A'], B = t['randlora_B'];
        const dims = sites.map((s) => randloraDims(s, c));
        const min = Math.max(...dims.map((d) => d.min)), max = Math.max(...dims.map((d) => d.max)), N = Math.max(...dims.map((d) => d.N));
        if (A.shape.length !== 3 || A.shape[0] !== c.r || A.shape[1] !== 1 || A.shape[2] < min) throw new Error(`RandLoRA: base_model.randlora_A has shape [${A.shape}] but r ${c.r} and the adapted modules need [${c.r}, 1, ≥${min}]`);
        if (B.shape.length !== 3 || B.shape[2] !== c.r || B.shape[1] < N || B.shape[0] < max) throw new Error(`RandLoRA: base_model.randlora_B has shape [${B.shape}] but r ${c.r} and the adapted modules need [≥${max}, ≥${N}, ${c.r}]`);
        state.saved = { A, B };
      },
      /** The stored pair, else PEFT's (regenerated for the set's largest shape). */
      save(state, c) {
        const p = state.saved;
        if (p) return { tensors: { randlora_A: p.A, randlora_B: p.B }, config: { save_projection: true } };
        const L = state.largest;
        if (!L) return null;
        const s = randloraShared(c, L);
        return { tensors: { randlora_A: { shape: [c.r, 1, s.min], data: s.A }, randlora_B: { shape: [s.max, s.N, c.r], data: s.B } }, config: { save_projection: true } };
      },
    },
  },
  createState: projectionState,

  init({ site, config, rng }) {
    const { min, N } = randloraDims(site, config);
    const lambda = new Float32Array(config.r * N);
    if (!config.init_weights) rng.fillNormal(lambda, 0, 1);
    const gamma = new Float32Array(N * min).fill(1 / Math.max(N, min));
    return [
      { key: 'randlora_lambda', shape: [config.r, N], data: lambda },
      { key: 'randlora_gamma', shape: [N, min], data: gamma },
    ];
  },

  forward({ g, site, config, state, p, x, base }) {
    const { min, max, N, inIsMin } = randloraDims(site, config);
    const L = largestFor(state, site);
    const r = config.r, k = state?.saved ? 'saved' : `${config.projection_prng_key}.${L.out}x${L.in}`;
    const { A, B } = randloraBases(site, config, state);
    const A3 = frozen(g, `randlora_A.${k}.${r}x1x${min}`, A, [r, 1, min]);
    const Bh = frozen(g, `randlora_B.${k}.${max}x${N * r}`, B, [max, N * r]);
    const scaled = op.mul(op.mul(op.reshape(p['randlora_lambda'], [r, N, 1]), A3), op.reshape(p['randlora_gamma'], [1, N, min]));
    const Ah = op.reshape(scaled, [r * N, min]);
    const s = config.randlora_alpha / r;
    if (inIsMin) return op.gemm(op.gemm(x, Ah, { transB: true }), Bh, { transB: true, alpha: s }, base);
    return op.gemm(op.gemm(x, Bh), Ah, { alpha: s }, base);
  },

  deltaWeight(site, config, params, _baseWeight, state) {
    const { min, max, N, inIsMin } = randloraDims(site, config);
    const r = config.r, s = config.randlora_alpha / r;
    const { A, B } = randloraBases(site, config, state);
    const lam = params['randlora_lambda'], gam = params['randlora_gamma'];
    // Â [rN, min]
    const Ah = new Float32Array(r * N * min);
    for (let kk = 0; kk < r; kk++) for (let b = 0; b < N; b++) {
      const l = lam[kk * N + b], row = (kk * N + b) * min;
      for (let j = 0; j < min; j++) Ah[row + j] = l * A[kk * min + j] * gam[b * min + j];
    }
    // P = s·B̂·Â [max, min]
    const P = new Float64Array(max * min);
    for (let i = 0; i < max; i++) for (let c = 0; c < N * r; c++) {
      const v = B[i * N * r + c];
      const row = c * min;
      for (let j = 0; j < min; j++) P[i * min + j] += v * Ah[row + j];
    }
    const m = site.outFeatures, n = site.inFeatures;
    const dW = new Float32Array(m * n);
    if (inIsMin) for (let i = 0; i < m * n; i++) dW[i] = s * P[i];
    else for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) dW[i * n + j] = s * P[j * min + i];
    return dW;
  },

  /** METHODS.md: λ (r×N) + γ (N×min(m,n)). */
  paramCount(site, config) {
    const { min, N } = randloraDims(site, config);
    return config.r * N + N * min;
  },
};
