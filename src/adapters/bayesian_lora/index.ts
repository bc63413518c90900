// Bayesian-LoRA-style rank and bit-width gates (config.ts: paper-derived,
// unverified; every choice is lorakit's). Keys (lorakit's): lora_A [r, in],
// lora_B [out, r], lora_E [r] (λ), rank_log_alpha [r], bits_log_alpha [8]
// (A's gates for 4, 8, 16, 32 bits, then B's). While training the gates are
// sampled with u fed per step (`blora_u.<module>` [r + 8], from the run's seed).
import * as op from '../../graph/ops.ts';
import type { Value } from '../../graph/ir.ts';
import { Rng } from '../../util/rng.ts';
import type { AdapterMethod } from '../types.ts';
import { BayesianLoraConfig, bayesianLoraConfigSchema, BITS, expectedBits, hardConcreteMean, HC, probOn, quantize } from './config.ts';
import { loraDelta } from '../lora/index.ts';

export const BLORA_KEYS = { A: 'lora_A', B: 'lora_B', E: 'lora_E', rank: 'rank_log_alpha', bits: 'bits_log_alpha' } as const;
const uInput = (m: string) => `blora_u.${m}`;
const NB = BITS.length;

/** Injected draws for tests: u for a module at a step (default: uniform from the run's seed). */
export interface BayesianLoraState {
  draw?: (module: string, step: number, n: number) => Float32Array;
}

const clamp01 = (v: Value) => op.neg(op.max2(op.neg(op.max2(v, 0)), -1));
/** Hard-concrete gates for log α and u (training) or the deterministic value (evaluation). */
function gates(logAlpha: Value, u: Value | null): Value {
  if (!u) return clamp01(op.add(op.mul(op.sigmoid(logAlpha), HC.zeta - HC.gamma), HC.gamma));
  const logit = op.sub(op.log(u), op.log(op.sub(op.lift(u, 1), u)));
  return clamp01(op.add(op.mul(op.sigmoid(op.mul(op.add(logit, logAlpha), 1 / HC.beta)), HC.zeta - HC.gamma), HC.gamma));
}
/** round with a straight-through gradient. */
const steRound = (v: Value) => op.add(v, op.stopGradient(op.sub(op.round(v), v)));
/** The Bayesian-Bits quantizer in the graph (config.ts quantize), gates z = [z4, z8, z16, z32] as [1] values. */
function quantizeGraph(x: Value, z: Value[]): Value {
  const axes = x.shape.map((_, i) => i);
  const hi = op.stopGradient(op.reduceMax(x, axes, false));
  const lo = op.stopGradient(op.neg(op.reduceMax(op.neg(x), axes, false)));
  let s = op.max2(op.div(op.sub(hi, lo), 3), 1e-30);
  const x2 = op.mul(s, steRound(op.div(x, s)));
  let xb = x2;
  const eps: Value[] = [];
  for (const b of [2, 4, 8, 16]) {
    s = op.div(s, 2 ** b + 1);
    const e = op.mul(s, steRound(op.div(op.sub(x, xb), s)));
    eps.push(e);
    xb = op.add(xb, e);
  }
  let acc: Value | null = null;
  for (let k = eps.length - 1; k >= 0; k--) acc = op.mul(z[k], acc ? op.add(eps[k], acc) : eps[k]);
  return op.add(x2, acc!);
}

/** Evaluation-time gates as numbers: rank gates (deterministic), bit gates (on when ≥ 0.5). */
function evalGates(params: Record<string, Float32Array>) {
  const rank = Array.from(params[BLORA_KEYS.rank], hardConcreteMean);
  const bits = Array.from(params[BLORA_KEYS.bits], (a) => (hardConcreteMean(a) >= 0.5 ? 1 : 0));
  return { rank, bitsA: bits.slice(0, NB), bitsB: bits.slice(NB) };
}
const bitsOf = (z: number[]) => 2 + z.reduce((acc, _, k) => acc + 2 ** (k + 1) * z.slice(0, k + 1).reduce((p, q) => p * q, 1), 0);

export const bayesianLora: AdapterMethod<BayesianLoraConfig, BayesianLoraState> = {
  name: 'bayesian-lora',
  savesAsLora: true,
  schema: bayesianLoraConfigSchema,
  peft: { peftType: 'BAYESIAN_LORA', onlyBias: 'lora_only', moduleKeys: Object.values(BLORA_KEYS), describe: (c) => `r ${c.r}` },
  createState: () => ({}),

  init({ site, config, rng }) {
    const n = site.inFeatures, m = site.outFeatures, r = config.r;
    const E = new Float32Array(r);
    if (!config.init_weights) rng.fillNormal(E, 0, 1);
    return [
      { key: BLORA_KEYS.A, shape: [r, n], data: rng.fillNormal(new Float32Array(r * n), 0, 0.02) },
      { key: BLORA_KEYS.B, shape: [m, r], data: rng.fillNormal(new Float32Array(m * r), 0, 0.02) },
      { key: BLORA_KEYS.E, shape: [r], data: E },
      { key: BLORA_KEYS.rank, shape: [r], data: new Float32Array(r).fill(config.gate_init) },
      { key: BLORA_KEYS.bits, shape: [2 * NB], data: new Float32Array(2 * NB).fill(config.gate_init) },
    ];
  },

  forward({ g, site, config, p, x, base, training }) {
    const r = config.r;
    let zR: Value, zQ: Value;
    if (training) {
      const u = g.leaf(uInput(site.name)) ?? g.input(uInput(site.name), 'float32', [r + 2 * NB]);
      const [uR, uQ] = op.split(u, [r, 2 * NB], 0);
      zR = gates(p[BLORA_KEYS.rank], uR);
      zQ = gates(p[BLORA_KEYS.bits], uQ);
    } else {
      zR = gates(p[BLORA_KEYS.rank], null);
      zQ = op.where(op.less(gates(p[BLORA_KEYS.bits], null), 0.5), 0, 1);
    }
    let A = p[BLORA_KEYS.A], B = p[BLORA_KEYS.B];
    if (config.quantize) {
      const zs = op.split(zQ, new Array(2 * NB).fill(1), 0);
      A = quantizeGraph(A, zs.slice(0, NB));
      B = quantizeGraph(B, zs.slice(NB));
    }
    const h = op.mul(op.gemm(x, A, { transB: true }), op.mul(p[BLORA_KEYS.E], zR));
    return op.gemm(h, B, { transB: true, alpha: config.lora_alpha / r }, base);
  },

  deltaWeight(site, config, params) {
    const f = bayesianLora.factors!(site, config, params);
    return loraDelta(site.outFeatures, site.inFeatures, f.r, f.scale, f.A, f.B);
  },

  /** The evaluation-time adapter: quantized A and B, the ranks whose λ·z ≠ 0, λ·z folded into B. */
  factors(site, config, params) {
    const r = config.r, n = site.inFeatures, m = site.outFeatures;
    const zg = evalGates(params);
    const A = config.quantize ? quantize(params[BLORA_KEYS.A], zg.bitsA) : Float64Array.from(params[BLORA_KEYS.A]);
    const B = config.quantize ? quantize(params[BLORA_KEYS.B], zg.bitsB) : Float64Array.from(params[BLORA_KEYS.B]);
    const w = Array.from(params[BLORA_KEYS.E], (e, k) => Math.fround(e * Math.fround(zg.rank[k])));
    const kept = w.flatMap((v, k) => (v !== 0 ? [k] : []));
    const k2 = kept.length, A2 = new Float32Array(k2 * n), B2 = new Float32Array(m * k2);
    kept.forEach((k, c) => {
      for (let j = 0; j < n; j++) A2[c * n + j] = A[k * n + j];
      for (let i = 0; i < m; i++) B2[i * k2 + c] = B[i * r + k] * w[k];
    });
    return { A: A2, B: B2, r: k2, scale: config.lora_alpha / r };
  },

  paramCount(site, config) {
    return config.r * (site.inFeatures + site.outFeatures + 2) + 2 * NB;
  },

  hooks: {
    feeds({ state, config, sites, training, step, seed }) {
      if (!training) return {};
      const n = config.r + 2 * NB;
      return Object.fromEntries(sites.map(({ site }) => {
        let u = state.draw?.(site.name, step ?? 0, n);
        if (!u) {
          const rng = new Rng(seed ?? 0).fork(`blora-${step ?? 0}`).fork(site.name);
          u = new Float32Array(n);
          for (let i = 0; i < n; i++) u[i] = Math.min(1 - 1e-6, Math.max(1e-6, rng.uniform()));
        }
        return [uInput(site.name), { data: u, dims: [n] }];
      }));
    },
    // bop_lambda · Σ P(rank gate on)·(in·E[b_A] + out·E[b_B]) / Σ r·(in + out)·32.
    lossTerm({ config, sites }) {
      if (!config.bop_lambda || !sites.length) return null;
      const c = -HC.beta * Math.log(-HC.gamma / HC.zeta);
      const pOn = (la: Value) => op.sigmoid(op.add(la, c));
      const eBits = (q: Value[]) => {
        let bits: Value | null = null, prod: Value | null = null, add = 2;
        for (const qk of q) {
          prod = prod ? op.mul(prod, qk) : qk;
          bits = bits ? op.add(bits, op.mul(prod, add)) : op.mul(prod, add);
          add *= 2;
        }
        return op.add(bits!, 2);
      };
      let total: Value | null = null, norm = 0;
      for (const s of sites) {
        const n = s.site.inFeatures, m = s.site.outFeatures, r = s.config.r;
        let bitsA: Value | number = 32, bitsB: Value | number = 32;
        if (s.config.quantize) {
          const q = op.split(pOn(s.p[BLORA_KEYS.bits]), new Array(2 * NB).fill(1), 0);
          bitsA = eBits(q.slice(0, NB));
          bitsB = eBits(q.slice(NB));
        }
        const perRank = op.add(typeof bitsA === 'number' ? s.p[BLORA_KEYS.rank].graph.scalar(n * bitsA) : op.mul(bitsA, n), typeof bitsB === 'number' ? m * bitsB : op.mul(bitsB, m));
        const t = op.reduceSum(op.mul(pOn(s.p[BLORA_KEYS.rank]), perRank), [0], false);
        total = total ? op.add(total, t) : t;
        norm += r * (n + m) * 32;
      }
      return op.mul(total!, config.bop_lambda / norm);
    },
    stepMetrics({ sites, params }) {
      const rank: Record<string, number> = {}, bits: Record<string, [number, number]> = {}, gateValues: Record<string, number[]> = {};
      for (const s of sites) {
        const pr = Object.fromEntries(Object.entries(s.keys).map(([k, key]) => [k, params.get(key)!]));
        const zg = evalGates(pr);
        gateValues[s.site.name] = zg.rank;
        rank[s.site.name] = zg.rank.filter((z, k) => z * pr[BLORA_KEYS.E][k] !== 0).length;
        bits[s.site.name] = [bitsOf(zg.bitsA), bitsOf(zg.bitsB)];
      }
      return { rank, bits, gates: gateValues };
    },
  },
};

export { expectedBits, probOn };
