// The methods of test/reparam_a.test.ts and tools/reference/reparam_a_inputs.ts:
// small configs, two linear sites (in > out and in < out), seeded inputs, and
// each method's regenerated frozen tensors (what the PyTorch reference is fed).
import type { AdapterMethod, ParamSpec } from '../../src/adapters/types.ts';
import type { LinearSite } from '../../src/models/types.ts';
import { Rng } from '../../src/util/rng.ts';
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
export const TOKENS = 5;

const normal = (key: string, n: number, std = 1) => new Rng(key).fillNormal(new Float32Array(n), 0, std);

/** W0 [out, in], x [TOKENS, in], the loss weights C [TOKENS, out] of one site. */
export function siteInputs(site: LinearSite) {
  return {
    W: normal(`reparam-a:W:${site.name}`, site.outFeatures * site.inFeatures, 0.5),
    x: normal(`reparam-a:x:${site.name}`, TOKENS * site.inFeatures),
    C: normal(`reparam-a:C:${site.name}`, TOKENS * site.outFeatures),
  };
}

/** The params lorakit initializes (init_weights=false: nonzero), nudged so every gradient is nonzero. */
export function siteParams(c: ReparamCase, site: LinearSite, W: Float32Array): ParamSpec[] {
  const config = c.method.schema.parse(c.config);
  const specs = c.method.init({ site, config, rng: new Rng(`reparam-a:init:${c.name}`).fork(site.name), baseWeight: W });
  const jitter = new Rng(`reparam-a:jitter:${c.name}:${site.name}`);
  for (const s of specs) for (let i = 0; i < s.data.length; i++) s.data[i] += 0.05 * jitter.normal();
  return specs;
}
