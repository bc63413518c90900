// VeRA (Kopiczko et al. 2024; PEFT `tuners/vera`): frozen random A [r, in]
// and B [out, r], trainable scaling vectors d [r] and b [out]:
//   y = W0·x + b ⊙ (B · (d ⊙ (A·x))),   ΔW = diag(b)·B·diag(d)·A.
// Keys are PEFT's (`vera_lambda_b`, `vera_lambda_d`). A and B are regenerated
// from `projection_prng_key`, never stored: A ~ U(±1/√in) (kaiming-uniform,
// a=√5), B ~ U(±1/√r), one pair per distinct (r, in) / (out, r) shared by
// every site of that shape. (PEFT draws one pair for the largest target shape
// and slices it; with a different generator the numbers differ anyway.)
// A file PEFT saved with `save_projection: true` holds its pair
// (`base_model.vera_A` [r, max_in], `base_model.vera_B` [max_out, r]): `shared`
// attaches it to the loaded config and every site uses its slices
// A[:, :in], B[:out, :] as PEFT does; re-saving writes it back.
import { z } from 'zod';
import * as op from '../../graph/ops.ts';
import type { AdapterMethod, StoredTensor } from '../types.ts';
import { frozen, matmul32, uniformBasis } from '../bases.ts';

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

/** Projections read from a file (PEFT's save_projection), per config object. */
const savedProjections = new WeakMap<VeraConfig, { A: StoredTensor; B: StoredTensor }>();

/** The first `cols` columns of a row-major [rows, stride] matrix. */
function leadingColumns(d: Float32Array, rows: number, stride: number, cols: number): Float32Array {
  if (cols === stride) return d;
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) out.set(d.subarray(i * stride, i * stride + cols), i * cols);
  return out;
}

export function veraA(c: VeraConfig, inF: number): Float32Array {
  const saved = savedProjections.get(c);
  if (saved) return leadingColumns(saved.A.data, c.r, saved.A.shape[1], inF);
  const b = 1 / Math.sqrt(inF);
  return uniformBasis(`vera:${c.projection_prng_key}:A:${c.r}x${inF}`, c.r * inF, -b, b);
}

export function veraB(c: VeraConfig, outF: number): Float32Array {
  const saved = savedProjections.get(c);
  if (saved) return saved.B.data.subarray(0, outF * c.r);
  const b = 1 / Math.sqrt(c.r);
  return uniformBasis(`vera:${c.projection_prng_key}:B:${outF}x${c.r}`, outF * c.r, -b, b);
}

export const vera: AdapterMethod<VeraConfig> = {
  name: 'vera',
  peftType: 'VERA',
  schema: veraConfigSchema,

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

  forward({ g, site, config, p, x, base }) {
    const n = site.inFeatures, m = site.outFeatures, r = config.r;
    const k = savedProjections.has(config) ? 'saved' : config.projection_prng_key;
    const A = frozen(g, `vera_A.${k}.${r}x${n}`, veraA(config, n), [r, n]);
    const B = frozen(g, `vera_B.${k}.${m}x${r}`, veraB(config, m), [m, r]);
    const h = op.mul(op.gemm(x, A, { transB: true }), p['vera_lambda_d']);
    return op.add(base, op.mul(op.gemm(h, B, { transB: true }), p['vera_lambda_b']));
  },

  deltaWeight(site, config, params) {
    const n = site.inFeatures, m = site.outFeatures, r = config.r;
    const A = veraA(config, n), B = veraB(config, m);
    const b = params['vera_lambda_b'], d = params['vera_lambda_d'];
    const Bs = new Float32Array(m * r);
    for (let i = 0; i < m; i++) for (let j = 0; j < r; j++) Bs[i * r + j] = b[i] * B[i * r + j] * d[j];
    return matmul32(Bs, A, m, r, n);
  },

  /** METHODS.md: b (out) + d (r). */
  paramCount(site, config) {
    return site.outFeatures + config.r;
  },

  toPeftConfig(c) {
    return { r: c.r, projection_prng_key: c.projection_prng_key, d_initial: c.d_initial, init_weights: c.init_weights, save_projection: false, vera_dropout: 0 };
  },

  shared: {
    names: ['vera_A', 'vera_B'],
    load(c, t, sites) {
      const A = t['vera_A'], B = t['vera_B'];
      const maxIn = Math.max(...sites.map((s) => s.inFeatures)), maxOut = Math.max(...sites.map((s) => s.outFeatures));
      if (A.shape.length !== 2 || A.shape[0] !== c.r || A.shape[1] < maxIn) throw new Error(`VeRA: base_model.vera_A has shape [${A.shape}] but r ${c.r} and the widest adapted input (${maxIn}) need [${c.r}, ≥${maxIn}]`);
      if (B.shape.length !== 2 || B.shape[1] !== c.r || B.shape[0] < maxOut) throw new Error(`VeRA: base_model.vera_B has shape [${B.shape}] but r ${c.r} and the widest adapted output (${maxOut}) need [≥${maxOut}, ${c.r}]`);
      savedProjections.set(c, { A, B });
    },
    save(c) {
      const p = savedProjections.get(c);
      return p ? { tensors: { vera_A: p.A, vera_B: p.B }, config: { save_projection: true } } : null;
    },
  },
};
