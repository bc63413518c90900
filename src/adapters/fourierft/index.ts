// FourierFT (config.ts has the equations). With C/S the cos/sin tables of the
// chosen frequencies (no FFT needed for a sparse spectrum),
//   ΔW = f·scaling · [Cm·diag(c)·Cnᵀ − Sm·diag(c)·Snᵀ] = f·scaling · ([Cm | −Sm] ⊙ [c, c]) · [Cn | Sn]ᵀ
// Cn[j,k] = cos(2π·((j·v_k) mod n)/n) etc. are computed in the graph from
// integer constants (exact modular angles; onnxruntime folds them once).
import * as op from '../../graph/ops.ts';
import type { Graph, Value } from '../../graph/ir.ts';
import type { AdapterMethod } from '../types.ts';
import { torchRandperm } from '../../util/torch_rng.ts';
import { memo } from '../bases.ts';
import { PEFT_PREFIX } from '../inject.ts';
import { capFrequencies, FourierFTConfig, fourierftConfigSchema, ifftFactor, moduleConfig } from './config.ts';

export const FOURIERFT_KEY = 'fourierft_spectrum';

/** The spectral locations, in coefficient order as PEFT: u (row, < out) and v (column, < in). */
export function fourierftIndices(out: number, inF: number, c: Pick<FourierFTConfig, 'n_frequency' | 'random_loc_seed'>): { u: Int32Array; v: Int32Array } {
  if (c.n_frequency > out * inF) throw new Error(`FourierFT: n_frequency (${c.n_frequency}) must be at most out·in (${out}·${inF} = ${out * inF}) of the module; lower n_frequency`);
  return memo(`fourierft|${out}x${inF}|${c.n_frequency}|${c.random_loc_seed}`, () => {
    // PEFT: torch.randperm(out*in, generator=torch.Generator().manual_seed(seed))[:n_frequency]
    const flat = torchRandperm(out * inF, c.random_loc_seed, { count: c.n_frequency });
    const u = new Int32Array(flat.length), v = new Int32Array(flat.length);
    for (let k = 0; k < flat.length; k++) {
      u[k] = Math.floor(flat[k] / inF);
      v[k] = flat[k] % inF;
    }
    return { u, v };
  });
}

const i64 = (xs: ArrayLike<number>) => BigInt64Array.from(Array.from(xs), (x) => BigInt(x));

/** [len, K] table cos/sin(2π·((t·f_k) mod len)/len) for t = 0..len−1. */
function trigTables(g: Graph, freqs: Int32Array, len: number, tag: string): [Value, Value] {
  const tName = `fourierft_range.${len}`;
  const t = g.leaf(tName) ?? g.weight(tName, i64(Array.from({ length: len }, (_, i) => i)), [len, 1], 'int64');
  const fName = `fourierft_freq.${tag}`;
  const f = g.leaf(fName) ?? g.weight(fName, i64(freqs), [1, freqs.length], 'int64');
  const prod = op.mul(t, f);
  const angle = op.mul(op.cast(op.mod(prod, len), 'float32'), (2 * Math.PI) / len);
  return [op.cos(angle), op.sin(angle)];
}

export const fourierft: AdapterMethod<FourierFTConfig> = {
  name: 'fourierft',
  schema: fourierftConfigSchema,
  // PEFT's FOURIERFT. n_frequency_pattern is a field of the config itself: moduleConfig applies it with
  // PEFT's FourierFT rule (`.*\.key$`, else the module's own name), not LoRA's get_pattern_key.
  // ifft2_norm is lorakit's, not PEFT's (PEFT always uses ifft2's default 'backward'): see peftForm.
  peft: {
    peftType: 'FOURIERFT',
    onlyBias: 'fourier_only',
    moduleKeys: [FOURIERFT_KEY],
    fieldsOf: (c) => {
      const { ifft2_norm: _norm, ...rest } = c;
      return { ...rest, fan_in_fan_out: false };
    },
    peftForm: {
      // ΔW = scaling·f(norm)·Re(Σ c_k e^{…}) is PEFT's (backward, f = 1/(mn)) with c_k·f(norm)/f(backward) per module.
      save({ sites, configFor, tensors }) {
        const norm = configFor(sites[0]).ifft2_norm;
        if (norm === 'backward') return undefined;
        for (const site of sites) {
          const m = site.outFeatures, n = site.inFeatures;
          const key = `${PEFT_PREFIX}${site.name}.${FOURIERFT_KEY}`;
          const k = ifftFactor(norm, m, n) / ifftFactor('backward', m, n);
          tensors[key] = { shape: tensors[key].shape, data: tensors[key].data.map((x) => x * k) };
        }
        return { ifft2_norm: norm };
      },
      restore: (config, lorakit) => (lorakit.ifft2_norm && lorakit.ifft2_norm !== 'backward' ? fourierftConfigSchema.parse({ ...config, ifft2_norm: lorakit.ifft2_norm }) : config),
      load({ sites, configFor, tensors }) {
        for (const site of sites) {
          const norm = configFor(site).ifft2_norm;
          const key = `${PEFT_PREFIX}${site.name}.${FOURIERFT_KEY}`;
          const t = tensors.get(key);
          if (norm === 'backward' || !t) continue;
          const k = ifftFactor('backward', site.outFeatures, site.inFeatures) / ifftFactor(norm, site.outFeatures, site.inFeatures);
          tensors.set(key, { shape: t.shape, data: t.data.map((x) => x * k) });
        }
      },
    },
  },

  planConfig(config, targets) {
    return capFrequencies(config, targets.map((t) => t.site));
  },

  init({ site, config: c0, rng }) {
    const config = moduleConfig(c0, site.name);
    fourierftIndices(site.outFeatures, site.inFeatures, config); // validates n_frequency
    const c = new Float32Array(config.n_frequency);
    if (!config.init_weights) rng.fillNormal(c, 0, 1);
    return [{ key: FOURIERFT_KEY, shape: [config.n_frequency], data: c }];
  },

  forward({ g, site, config: c0, p, x, W, bias }) {
    const config = moduleConfig(c0, site.name);
    const m = site.outFeatures, n = site.inFeatures;
    const { u, v } = fourierftIndices(m, n, config);
    const tag = `${m}x${n}.${config.n_frequency}.${config.random_loc_seed}`;
    const [Cn, Sn] = trigTables(g, v, n, `v.${tag}`);
    const [Cm, Sm] = trigTables(g, u, m, `u.${tag}`);
    const c = p[FOURIERFT_KEY];
    const alpha = config.scaling * ifftFactor(config.ifft2_norm, m, n);
    const Tm = op.mul(op.concat([Cm, op.neg(Sm)], 1), op.concat([c, c], 0)); // [m, 2K]
    const Tn = op.concat([Cn, Sn], 1); // [n, 2K]
    // Dense ΔW once per step (m·n·2K) in the site's layout, added to W0, and the
    // layer recomputed with it: cheaper than the factored x·Tn·Tmᵀ per token
    // once a batch has more than ~m·n/(m+n) tokens; the unused W0·x is dropped.
    const dW = site.layout === 'out_in' ? op.gemm(Tm, Tn, { transB: true, alpha }) : op.gemm(Tn, Tm, { transB: true, alpha });
    const Weff = op.add(W, dW);
    return site.layout === 'in_out' ? op.linear(x, Weff, bias) : op.linearT(x, Weff, bias);
  },

  deltaWeight(site, c0, params) {
    const config = moduleConfig(c0, site.name);
    const m = site.outFeatures, n = site.inFeatures;
    const { u, v } = fourierftIndices(m, n, config);
    const c = params[FOURIERFT_KEY];
    const f = config.scaling * ifftFactor(config.ifft2_norm, m, n);
    // Row spectra R_u[j] = Σ_{k: u_k = u} c_k·e^{2πi·v_k·j/n}, then an inverse DFT over the rows present.
    const rows = new Map<number, { re: Float64Array; im: Float64Array }>();
    for (let k = 0; k < c.length; k++) {
      let r = rows.get(u[k]);
      if (!r) rows.set(u[k], (r = { re: new Float64Array(n), im: new Float64Array(n) }));
      for (let j = 0; j < n; j++) {
        const a = (2 * Math.PI * ((v[k] * j) % n)) / n;
        r.re[j] += c[k] * Math.cos(a);
        r.im[j] += c[k] * Math.sin(a);
      }
    }
    const acc = new Float64Array(m * n);
    for (const [uu, r] of rows) {
      for (let i = 0; i < m; i++) {
        const a = (2 * Math.PI * ((uu * i) % m)) / m;
        const ca = Math.cos(a), sa = Math.sin(a);
        const row = i * n;
        for (let j = 0; j < n; j++) acc[row + j] += ca * r.re[j] - sa * r.im[j];
      }
    }
    const dW = new Float32Array(m * n);
    for (let i = 0; i < dW.length; i++) dW[i] = f * acc[i];
    return dW;
  },

  paramCount(site, config) {
    return moduleConfig(config, site.name).n_frequency;
  },
};
