// The methods of test/reparam_a.test.ts and tools/reference/reparam_a_inputs.ts:
// small configs, two linear sites (in > out and in < out), and each method's
// frozen tensors as lorakit regenerates them (from its seed or W0), to compare
// with the ones tools/reference/reparam_a.py makes from each method's definition.
import type { AdapterMethod } from '../../src/adapters/types.ts';
import type { LinearSite } from '../../src/models/types.ts';
import { vera, veraA, veraB } from '../../src/adapters/vera/index.ts';
import { nola, nolaBases } from '../../src/adapters/nola/index.ts';
import { loraxs, svdFactors } from '../../src/adapters/loraxs/index.ts';
import { loldu, lolduFactors } from '../../src/adapters/loldu/index.ts';
import { randlora, randloraBases } from '../../src/adapters/randlora/index.ts';
import { lorasb, LORASB_FROZEN } from '../../src/adapters/lorasb/index.ts';

export interface ReparamCase {
  name: string;
  method: AdapterMethod;
  config: Record<string, unknown>;
  /** Frozen tensors lorakit regenerates for one site (from the seed or from W0). */
  frozen(site: LinearSite, config: any, W: Float32Array): Record<string, Float32Array>;
  /** METHODS.md's trainable-parameter formula for one site. */
  formula(site: LinearSite, config: any): number;
  /** Tensors stored with the adapter but kept frozen (LoRA-SB's A and B). */
  stored?: string[];
  /**
   * Frozen tensors lorakit does not regenerate as the reference does (RandLoRA's bfloat16
   * draws: torch 1.13's there, torch 2's here), handed to the method as stored ones.
   */
  given?: (frozen: Record<string, { shape: number[]; data: number[] }>) => unknown;
}

export const CASES: ReparamCase[] = [
  {
    name: 'vera', method: vera, config: { r: 4, init_weights: false },
    frozen: (s, c) => ({ A: veraA(c, s), B: veraB(c, s) }),
    formula: (s, c) => s.outFeatures + c.r,
  },
  {
    name: 'nola', method: nola, config: { r: 3, lora_alpha: 6, num_basis_A: 5, num_basis_B: 6, init_weights: false },
    frozen: (s, c) => { const b = nolaBases(s, c); return { A0: b.A0, Abases: b.Ab, Bbases: b.Bb }; },
    formula: (_s, c) => c.num_basis_A + c.num_basis_B,
  },
  {
    name: 'loraxs', method: loraxs, config: { r: 3, lora_alpha: 6, init_weights: false },
    frozen: (s, c, W) => { const f = svdFactors(s, W, c.r); return { U: f.U, SVt: f.SVt }; },
    formula: (_s, c) => c.r * c.r,
  },
  {
    name: 'loldu', method: loldu, config: { r: 4, init_weights: false },
    frozen: (s, c, W) => { const f = lolduFactors(s, W, c.r); return { PL: f.PL, Ur: f.Ur, d: f.d }; },
    formula: (_s, c) => c.r + 1,
  },
  {
    name: 'randlora', method: randlora, config: { r: 3, randlora_alpha: 6, init_weights: false },
    frozen: (s, c) => randloraBases(s, c),
    given: (f) => ({ saved: { A: { shape: f.A.shape, data: Float32Array.from(f.A.data) }, B: { shape: f.B.shape, data: Float32Array.from(f.B.data) } } }),
    formula: (s, c) => { const mn = Math.min(s.inFeatures, s.outFeatures), N = Math.ceil(mn / c.r); return c.r * N + N * mn; },
  },
  {
    name: 'lorasb', method: lorasb, config: { r: 3, scaling: 1.5, init_weights: false },
    frozen: () => ({}),
    formula: (_s, c) => c.r * c.r,
    stored: LORASB_FROZEN,
  },
];

export const SITES: LinearSite[] = [
  { name: 'a', inFeatures: 12, outFeatures: 10, weightKey: 'a.weight', layout: 'out_in' },
  { name: 'b', inFeatures: 10, outFeatures: 12, weightKey: 'b.weight', layout: 'out_in' },
];
