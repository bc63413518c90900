// NOLA (Koohpayegani et al. 2024, ICLR; official code UCDvision/NOLA): LoRA
// whose A and B are linear combinations of frozen random bases,
//   A = A0 + (1/√k)·Σ_i α_i·A_i,   B = (1/√l)·Σ_j β_j·B_j,
//   y = W0·x + s·B·A·x,  s = lora_alpha / r,
// A_i [r, in], B_j [out, r] ~ U(−1, 1) and A0 kaiming-uniform (±1/√in), all
// regenerated from a per-layer seed (`basis_seed` + module name), never
// stored. Trainable: α [k] and β [l] (keys `nola_alpha`, `nola_beta`, our own
// names: PEFT has no NOLA). α = β = 0 at init, so ΔW = 0.
// Memory: the bases are k·r·in + l·out·r floats per module (initializers).
import { z } from 'zod';
import * as op from '../../graph/ops.ts';
import type { LinearSite } from '../../models/types.ts';
import type { AdapterMethod } from '../types.ts';
import { frozen, matmul32, uniformBasis } from '../bases.ts';

export const nolaConfigSchema = z.object({
  /** Rank of A and B. */
  r: z.number().int().positive().default(8),
  /** s = lora_alpha / r (default s = 1). */
  lora_alpha: z.number().positive().default(8),
  /** k: number of random bases of A. */
  num_basis_A: z.number().int().positive().default(512),
  /** l: number of random bases of B. */
  num_basis_B: z.number().int().positive().default(512),
  /** Seed of the bases (with the module name: one seed per layer). */
  basis_seed: z.number().int().default(0),
  /** true: α = β = 0 (ΔW = 0). false: α, β ~ N(0, 1) (tests). */
  init_weights: z.boolean().default(true),
});
export type NolaConfig = z.infer<typeof nolaConfigSchema>;

const seedOf = (c: NolaConfig, site: LinearSite) => `nola:${c.basis_seed}:${site.name}:${c.r}`;

/** A0 [r, in], A-bases [k, r·in], B-bases [l, out·r] of one site. */
export function nolaBases(site: LinearSite, c: NolaConfig) {
  const n = site.inFeatures, m = site.outFeatures, r = c.r, s = seedOf(c, site);
  const b0 = 1 / Math.sqrt(n);
  return {
    A0: uniformBasis(`${s}:A0:${n}`, r * n, -b0, b0),
    Ab: uniformBasis(`${s}:A:${c.num_basis_A}x${n}`, c.num_basis_A * r * n, -1, 1),
    Bb: uniformBasis(`${s}:B:${c.num_basis_B}x${m}`, c.num_basis_B * m * r, -1, 1),
  };
}

/** A [r, in] and B [out, r] from the coefficients. */
export function nolaFactors(site: LinearSite, c: NolaConfig, alpha: Float32Array, beta: Float32Array) {
  const n = site.inFeatures, m = site.outFeatures, r = c.r;
  const { A0, Ab, Bb } = nolaBases(site, c);
  const A = Float64Array.from(A0), B = new Float64Array(m * r);
  const ka = 1 / Math.sqrt(c.num_basis_A), kb = 1 / Math.sqrt(c.num_basis_B);
  for (let i = 0; i < c.num_basis_A; i++) {
    const a = alpha[i] * ka;
    if (a !== 0) for (let t = 0; t < r * n; t++) A[t] += a * Ab[i * r * n + t];
  }
  for (let j = 0; j < c.num_basis_B; j++) {
    const b = beta[j] * kb;
    if (b !== 0) for (let t = 0; t < m * r; t++) B[t] += b * Bb[j * m * r + t];
  }
  return { A, B };
}

export const nola: AdapterMethod<NolaConfig> = {
  name: 'nola',
  schema: nolaConfigSchema,
  // lorakit's own (PEFT has no NOLA): the file holds the config's fields and α, β.
  peft: { peftType: 'NOLA', onlyBias: 'lora_only', moduleKeys: ['nola_alpha', 'nola_beta'] },

  init({ config, rng }) {
    const a = new Float32Array(config.num_basis_A), b = new Float32Array(config.num_basis_B);
    if (!config.init_weights) {
      rng.fillNormal(a, 0, 1);
      rng.fillNormal(b, 0, 1);
    }
    return [
      { key: 'nola_alpha', shape: [config.num_basis_A], data: a },
      { key: 'nola_beta', shape: [config.num_basis_B], data: b },
    ];
  },

  forward({ g, site, config, p, x, base }) {
    const n = site.inFeatures, m = site.outFeatures, r = config.r, k = config.num_basis_A, l = config.num_basis_B;
    const { A0, Ab, Bb } = nolaBases(site, config);
    const s = seedOf(config, site);
    // A = A0 + (1/√k)·α·A-bases (one [1,k]·[k, r·in] product), B likewise.
    const aRow = op.gemm(op.reshape(p['nola_alpha'], [1, k]), frozen(g, `${s}.Abases.${k}`, Ab, [k, r * n]), { alpha: 1 / Math.sqrt(k) });
    const A = op.add(frozen(g, `${s}.A0`, A0, [r, n]), op.reshape(aRow, [r, n]));
    const bRow = op.gemm(op.reshape(p['nola_beta'], [1, l]), frozen(g, `${s}.Bbases.${l}`, Bb, [l, m * r]), { alpha: 1 / Math.sqrt(l) });
    const B = op.reshape(bRow, [m, r]);
    const h = op.gemm(x, A, { transB: true });
    return op.gemm(h, B, { transB: true, alpha: config.lora_alpha / r }, base);
  },

  deltaWeight(site, config, params) {
    const { A, B } = nolaFactors(site, config, params['nola_alpha'], params['nola_beta']);
    const s = config.lora_alpha / config.r;
    const dW = matmul32(B, A, site.outFeatures, config.r, site.inFeatures);
    for (let i = 0; i < dW.length; i++) dW[i] *= s;
    return dW;
  },

  factors(site, config, params) {
    const { A, B } = nolaFactors(site, config, params['nola_alpha'], params['nola_beta']);
    return { A: Float32Array.from(A), B: Float32Array.from(B), r: config.r, scale: config.lora_alpha / config.r };
  },

  /** METHODS.md: α (k) + β (l). */
  paramCount(_site, config) {
    return config.num_basis_A + config.num_basis_B;
  },
};
