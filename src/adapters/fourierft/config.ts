import { z } from 'zod';

/**
 * FourierFT (Gao et al. 2024, "Parameter-Efficient Fine-Tuning with Discrete
 * Fourier Transform"), with HF PEFT's semantics (tuners/fourierft): a sparse
 * spectrum of n_frequency learnable coefficients c at fixed random locations
 * (u_k, v_k) of the [out, in] frequency grid,
 *   ΔW = scaling · Re(ifft2(S)),   S[u_k, v_k] = c_k, 0 elsewhere,
 *   ifft2 with norm 'backward': Re(ifft2(S))[i,j] = 1/(m·n) Σ_k c_k·cos(2π(u_k·i/m + v_k·j/n)).
 * Defaults as PEFT's FourierFTConfig: n_frequency 1000, scaling 150,
 * random_loc_seed 777, init_weights false (c ~ N(0, 1); true gives c = 0).
 * Trainable: n_frequency per module. Key: `fourierft_spectrum` (PEFT's).
 *
 * Locations exactly as PEFT (FourierFTLayer.set_indices): the first
 * n_frequency entries f_k of torch.randperm(out·in,
 * generator=torch.Generator().manual_seed(random_loc_seed)), u_k = f_k // in,
 * v_k = f_k % in, in that order (coefficient k sits at (u_k, v_k); not
 * sorted), the same for every module of one shape. src/util/torch_rng.ts
 * reproduces torch's CPU generator and randperm bit for bit (current torch;
 * out·in below 214,748,364 also matches torch ≤ 2.6), so a spectrum saved by
 * PEFT loads at its own frequencies, and nothing but the seed is stored.
 */
export const fourierftConfigSchema = z.object({
  n_frequency: z.number().int().positive().default(1000),
  scaling: z.number().default(150),
  random_loc_seed: z.number().int().nonnegative().default(777),
  init_weights: z.boolean().default(false),
  ifft2_norm: z.enum(['backward', 'ortho', 'forward']).default('backward'),
  /** PEFT's per-module n_frequency: key → n for the module named key or matching `.*\.key$` (first match in order). */
  n_frequency_pattern: z.record(z.string(), z.number().int().positive()).default({}),
});
export type FourierFTConfig = z.infer<typeof fourierftConfigSchema>;

/** The config one module runs with: n_frequency from n_frequency_pattern (PEFT's FourierFTModel._create_and_replace rule). */
export function moduleConfig<C extends Pick<FourierFTConfig, 'n_frequency' | 'n_frequency_pattern'>>(c: C, module: string): C {
  const p = c.n_frequency_pattern ?? {};
  // next(key matching `.*\.key$`, else the module's own name), then pattern.get(that, n_frequency)
  const key = Object.keys(p).find((k) => new RegExp(`^.*\\.${k}$`).test(module)) ?? module;
  return !Object.hasOwn(p, key) || p[key] === c.n_frequency ? c : { ...c, n_frequency: p[key] };
}

/**
 * PEFT refuses an n_frequency above a module's out·in; lorakit caps it there
 * (every frequency of that module), per module, so the defaults run on small
 * models. The caps go into n_frequency_pattern ahead of the given keys (PEFT
 * takes the first matching key), so PEFT loads the saved adapter the same.
 */
export function capFrequencies<C extends { n_frequency: number; n_frequency_pattern: Record<string, number> }>(config: C, sites: { name: string; inFeatures: number; outFeatures: number }[]): C {
  const caps: Record<string, number> = {};
  for (const s of sites) {
    const size = s.outFeatures * s.inFeatures;
    if (moduleConfig(config, s.name).n_frequency > size) caps[s.name] = size;
  }
  return Object.keys(caps).length ? { ...config, n_frequency_pattern: { ...caps, ...Object.fromEntries(Object.entries(config.n_frequency_pattern).filter(([k]) => !(k in caps))) } } : config;
}

/** The factor ifft2's norm applies: 1/(mn) backward, 1/√(mn) ortho, 1 forward. */
export function ifftFactor(norm: FourierFTConfig['ifft2_norm'], m: number, n: number): number {
  return norm === 'backward' ? 1 / (m * n) : norm === 'ortho' ? 1 / Math.sqrt(m * n) : 1;
}
