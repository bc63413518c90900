// VeRA (Kopiczko et al. 2024; PEFT `tuners/vera`): frozen random A [r, in]
// and B [out, r], trainable scaling vectors d [r] and b [out]:
//   y = W0·x + b ⊙ (B · (d ⊙ (A·x))),   ΔW = diag(b)·B·diag(d)·A.
// Keys are PEFT's (`vera_lambda_b`, `vera_lambda_d`). A and B are PEFT's own
// tensors (vera/model.py _init_vera_A_vera_B): one pair for the largest
// adapted shape (max out, max in over the targets, planConfig), drawn with
// torch.Generator().manual_seed(projection_prng_key), A [r, max_in] then
// B [max_out, r], each U(±√(6/fan_in)) in float32 (src/util/torch_init.ts,
// bit-exact); every site uses the slices A[:, :in], B[:out, :]. The set's
// state (projections.ts) holds that shape and any pair read from a file. So an adapter
// trained here gives the same outputs in PEFT from the seed alone; saving also
// writes the pair (`base_model.vera_A` / `vera_B`, PEFT's default
// `save_projection: true`). A file that holds the pair (`shared`) is used as
// stored. Called without a set's state (one site on its own) the site's own
// shape is the largest, as PEFT adapting that one module.
import { z } from 'zod';
import * as op from '../../graph/ops.ts';
import type { LinearSite } from '../../models/types.ts';
import type { AdapterMethod } from '../types.ts';
import { frozen, matmul32, memo } from '../bases.ts';
import { largestFor, projectionGenerator, projectionState, type ProjectionState, type Shape } from '../projections.ts';
import { kaimingUniformBound, torchUniform } from '../../util/torch_init.ts';

export const veraConfigSchema = z.object({
  /** Rank of the shared random projections (PEFT default 256). */
  r: z.number().int().positive().default(256),
  /** Seed of the frozen random A and B (PEFT's name). */
  projection_prng_key: z.number().int().default(0),
  /** Initial value of every entry of d (vera_lambda_d). */
  d_initial: z.number().default(0.1),
  /** true: b = 0, d = d_initial (ΔW = 0). false: b = 1, d ~ N(0, 1) (tests). */
  init_weights: z.boolean().default(true),
});
export type VeraConfig = z.infer<typeof veraConfigSchema>;

/** PEFT's shared pair for the largest shape L: A [r, L.in], B [L.out, r] (float32). */
export function veraProjections(c: VeraConfig, L: Shape): { A: Float32Array; B: Float32Array } {
  return memo(`vera|${c.projection_prng_key}|${c.r}|${L.out}x${L.in}`, () => {
    const g = projectionGenerator(c.projection_prng_key);
    const a = kaimingUniformBound(L.in), b = kaimingUniformBound(c.r); // fan_in of [r, in] and of [out, r]
    const A = torchUniform(g, c.r * L.in, -a, a);
    return { A, B: torchUniform(g, L.out * c.r, -b, b) };
  });
}

/** The first `cols` columns of a row-major [rows, stride] matrix. */
function leadingColumns(d: Float32Array, rows: number, stride: number, cols: number): Float32Array {
  if (cols === stride) return d;
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) out.set(d.subarray(i * stride, i * stride + cols), i * cols);
  return out;
}

/** A [r, in] of one site: the first `in` columns of the shared A. */
export function veraA(c: VeraConfig, site: LinearSite, state?: ProjectionState): Float32Array {
  const saved = state?.saved;
  if (saved) return leadingColumns(saved.A.data, c.r, saved.A.shape[1], site.inFeatures);
  const L = largestFor(state, site);
  return leadingColumns(veraProjections(c, L).A, c.r, L.in, site.inFeatures);
}

/** B [out, r] of one site: the first `out` rows of the shared B. */
export function veraB(c: VeraConfig, site: LinearSite, state?: ProjectionState): Float32Array {
  const saved = state?.saved;
  if (saved) return saved.B.data.subarray(0, site.outFeatures * c.r);
  return veraProjections(c, largestFor(state, site)).B.subarray(0, site.outFeatures * c.r);
}

/** ΔW = B'·A with A [r, in] the site's slice of the shared A and B' = diag(b)·B·diag(d) [out, r]. */
function veraFactors(site: LinearSite, config: VeraConfig, params: Record<string, Float32Array>, state?: ProjectionState) {
  const m = site.outFeatures, r = config.r;
  const B = veraB(config, site, state), b = params['vera_lambda_b'], d = params['vera_lambda_d'];
  const Bs = new Float32Array(m * r);
  for (let i = 0; i < m; i++) for (let j = 0; j < r; j++) Bs[i * r + j] = b[i] * B[i * r + j] * d[j];
  return { A: veraA(config, site, state), B: Bs };
}

export const vera: AdapterMethod<VeraConfig, ProjectionState> = {
  name: 'vera',
  schema: veraConfigSchema,
  peft: {
    peftType: 'VERA',
    onlyBias: 'vera_only',
    // PEFT's VeraConfig: an older name of init_weights; fields lorakit implements at one value.
    renamed: { init_vera_weights: 'init_weights' },
    fixed: { vera_dropout: 0, regenerate_projection: false },
    moduleKeys: ['vera_lambda_b', 'vera_lambda_d'],
    fieldsOf: (c) => ({ ...c, save_projection: false, vera_dropout: 0 }), // shared.save sets save_projection when it writes the pair
    shared: {
      names: ['vera_A', 'vera_B'],
      flag: 'save_projection',
      load(state, c, t, sites) {
        const A = t['vera_A'], B = t['vera_B'];
        const maxIn = Math.max(...sites.map((s) => s.inFeatures)), maxOut = Math.max(...sites.map((s) => s.outFeatures));
        if (A.shape.length !== 2 || A.shape[0] !== c.r || A.shape[1] < maxIn) throw new Error(`VeRA: base_model.vera_A has shape [${A.shape}] but r ${c.r} and the widest adapted input (${maxIn}) need [${c.r}, ≥${maxIn}]`);
        if (B.shape.length !== 2 || B.shape[1] !== c.r || B.shape[0] < maxOut) throw new Error(`VeRA: base_model.vera_B has shape [${B.shape}] but r ${c.r} and the widest adapted output (${maxOut}) need [≥${maxOut}, ${c.r}]`);
        state.saved = { A, B };
      },
      /** The stored pair, else PEFT's (regenerated for the set's largest shape). */
      save(state, c) {
        const p = state.saved;
        if (p) return { tensors: { vera_A: p.A, vera_B: p.B }, config: { save_projection: true } };
        const L = state.largest;
        if (!L) return null;
        const { A, B } = veraProjections(c, L);
        return { tensors: { vera_A: { shape: [c.r, L.in], data: A }, vera_B: { shape: [L.out, c.r], data: B } }, config: { save_projection: true } };
      },
    },
  },
  createState: projectionState,

  init({ site, config, rng }) {
    const m = site.outFeatures, r = config.r;
    const b = new Float32Array(m), d = new Float32Array(r);
    if (config.init_weights) d.fill(config.d_initial);
    else {
      b.fill(1);
      rng.fillNormal(d, 0, 1);
    }
    return [
      { key: 'vera_lambda_b', shape: [m], data: b },
      { key: 'vera_lambda_d', shape: [r], data: d },
    ];
  },

  forward({ g, site, config, state, p, x, base }) {
    const n = site.inFeatures, m = site.outFeatures, r = config.r;
    const L = largestFor(state, site);
    const k = state?.saved ? 'saved' : `${config.projection_prng_key}.${L.out}x${L.in}`;
    const A = frozen(g, `vera_A.${k}.${r}x${n}`, veraA(config, site, state), [r, n]);
    const B = frozen(g, `vera_B.${k}.${m}x${r}`, veraB(config, site, state), [m, r]);
    const h = op.mul(op.gemm(x, A, { transB: true }), p['vera_lambda_d']);
    return op.add(base, op.mul(op.gemm(h, B, { transB: true }), p['vera_lambda_b']));
  },

  deltaWeight(site, config, params, _baseWeight, state) {
    const { A, B } = veraFactors(site, config, params, state);
    return matmul32(B, A, site.outFeatures, config.r, site.inFeatures);
  },

  factors(site, config, params, _baseWeight, state) {
    return { ...veraFactors(site, config, params, state), r: config.r, scale: 1 };
  },

  /** METHODS.md: b (out) + d (r). */
  paramCount(site, config) {
    return site.outFeatures + config.r;
  },
};
