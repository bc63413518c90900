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
 * Choice: the locations come from lorakit's own generator seeded by
 * random_loc_seed (src/adapters/sltrain/support.ts; like PEFT, the same for
 * every module of the same shape), not torch.randperm, so a spectrum saved by
 * PEFT loads under the right key but at different frequencies.
 */
export const fourierftConfigSchema = z.object({
  n_frequency: z.number().int().positive().default(1000),
  scaling: z.number().default(150),
  random_loc_seed: z.number().int().nonnegative().default(777),
  init_weights: z.boolean().default(false),
  ifft2_norm: z.enum(['backward', 'ortho', 'forward']).default('backward'),
});
export type FourierFTConfig = z.infer<typeof fourierftConfigSchema>;

/** The factor ifft2's norm applies: 1/(mn) backward, 1/√(mn) ortho, 1 forward. */
export function ifftFactor(norm: FourierFTConfig['ifft2_norm'], m: number, n: number): number {
  return norm === 'backward' ? 1 / (m * n) : norm === 'ortho' ? 1 / Math.sqrt(m * n) : 1;
}
