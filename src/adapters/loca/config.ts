import { z } from 'zod';

/**
 * LoCA (Du et al. 2025, "LoCA: Location-Aware Cosine Adaptation for
 * Parameter-Efficient Fine-Tuning"): ΔW = α·C_mᵀ·S·C_n, the 2-D inverse DCT
 * (orthonormal DCT-II matrices C) of a sparse spectrum S with n_frequency
 * learnable coefficients c_k at learnable integer locations (u_k, v_k):
 *   ΔW = α·Σ_k c_k·d_m(u_k)·d_n(v_k)ᵀ,  d_m(u)[i] = w_u·cos(π(2i+1)u / 2m),
 *   w_0 = √(1/m), w_u = √(2/m).
 * Trainable: the coefficients (n_frequency per module); the locations move by
 * a hook during the first `location_fraction` of training.
 *
 * Location step (METHODS.md marks it *unverified*; no official code found):
 * with G = ∂L/∂ΔW and Ĝ = C_m·G·C_nᵀ (so ∂L/∂S = α·Ĝ), moving coefficient k
 * from (u, v) to a neighbour (u', v') changes L by ≈ α·c_k·(Ĝ[u',v'] − Ĝ[u,v])
 * (first order). Every `location_interval` steps each coefficient moves to
 * the free neighbour (u±1 or v±1) with the most negative predicted change, if
 * any is negative. Ĝ at the four neighbours is computed in the training graph
 * (from the backward pass's G) and read by the hook.
 *
 * Choices: c = 0 at init (ΔW = 0; `init_weights: false` draws c ~ N(0, 1) for
 * tests); α = 1 (orthonormal bases: each coefficient is a unit-Frobenius-norm
 * update); initial locations uniformly random from `random_loc_seed` (same
 * generator as FourierFT); n_frequency 1000 like FourierFT; locations are run
 * state (not saved: a loaded adapter starts from the seeded locations).
 * A module smaller than n_frequency gets all its out·in frequencies
 * (n_frequency_pattern, as FourierFT).
 */
export const locaConfigSchema = z.object({
  n_frequency: z.number().int().positive().default(1000),
  scaling: z.number().default(1),
  random_loc_seed: z.number().int().nonnegative().default(777),
  /** Locations move during this fraction of training (0 = fixed locations). */
  location_fraction: z.number().min(0).max(1).default(0.3),
  /** Steps between location updates. */
  location_interval: z.number().int().positive().default(1),
  init_weights: z.boolean().default(true),
  /** Per-module n_frequency (FourierFT's n_frequency_pattern rule); modules smaller than n_frequency are capped here at out·in. */
  n_frequency_pattern: z.record(z.string(), z.number().int().positive()).default({}),
});
export type LocaConfig = z.infer<typeof locaConfigSchema>;
