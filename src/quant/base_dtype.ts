// --base-dtype: the form the frozen base weights of the linear projections are
// computed in. Adapters, biases, LayerNorms and embedding tables stay float32.

import { dropFloat32, markQuantized, quantizedFormOf } from './quantized_weights.ts';
import { QUANT_FORMATS, type QuantizedForm } from './formats.ts';

export const BASE_DTYPES = ['fp32', 'int8', 'nf4', 'int4'] as const;
export type BaseDtype = (typeof BASE_DTYPES)[number];

/** What each dtype is, for --help and error messages. */
export const BASE_DTYPE_HELP =
  "form of the frozen base weights of the linear projections: fp32 (as loaded); " +
  "int8 = per-output-channel symmetric absmax, activations quantized per tensor by ORT's DynamicQuantizeMatMul (the input gradient through the same codes with each row normalized); " +
  "nf4 = bitsandbytes' 4-bit NormalFloat, blocks of 64 with a float32 absmax (no double quantization), run by ORT's MatMulBnb4 (it dequantizes to fp32: memory, not speed; the input gradient through the same codes dequantized); " +
  "int4 = 4-bit asymmetric codes with a scale and zero point per 32×32 tile, run by ORT's MatMulNBits (activations quantized to int8 per block; the input gradient through a copy of the same codes packed the other way). " +
  'Adapters, biases, LayerNorms and embeddings stay fp32; an adapter trained on a quantized base saves as a normal PEFT adapter for the fp32 model';


/** The parts of a model's linear site that quantization reads (src/models/types.ts LinearSite). */
export interface QuantizableSite {
  name: string;
  weightKey: string;
  inFeatures: number;
  outFeatures: number;
  layout: 'in_out' | 'out_in';
  kind?: 'linear' | 'embedding';
}

export interface BaseQuantization {
  dtype: BaseDtype;
  /** Weights quantized (their keys). */
  quantized: string[];
  /** Bytes of the quantized weights as float32, and as stored now (codes + scales). */
  fp32Bytes: number;
  storedBytes: number;
}

/**
 * Quantizes the frozen weight of every linear site (not embedding tables) of a
 * loaded model, once: graphs built from these weight arrays then use the
 * quantized product (src/quant/frozen_linear.ts). A weight shared by several
 * sites (a tied LM head) is quantized once.
 *
 * The float32 values are then dropped from `weights` (the entry gets a
 * zero-length stand-in that dequantizes on demand: float32Of), except for a
 * weight stored under another module's name (a tied LM head reads the
 * embedding table, which the lookups still need).
 */
export function quantizeBase(weights: Map<string, { shape: number[]; data: Float32Array }>, sites: readonly QuantizableSite[], dtype: BaseDtype): BaseQuantization {
  if (!(BASE_DTYPES as readonly string[]).includes(dtype)) throw new Error(`--base-dtype must be one of ${BASE_DTYPES.join(', ')}, got '${dtype}'`);
  const out: BaseQuantization = { dtype, quantized: [], fp32Bytes: 0, storedBytes: 0 };
  if (dtype === 'fp32') return out;
  const seen = new Set<string>();
  for (const site of sites) {
    if (site.kind === 'embedding' || seen.has(site.weightKey)) continue;
    const w = weights.get(site.weightKey);
    if (!w) throw new Error(`--base-dtype ${dtype}: the weight '${site.weightKey}' of module '${site.name}' is missing from the model`);
    seen.add(site.weightKey);
    const f = markQuantized(w.data, dtype, site.inFeatures, site.outFeatures, site.layout);
    if (site.weightKey === `${site.name}.weight`) weights.set(site.weightKey, { ...w, data: dropFloat32(w.data, site.layout) });
    out.quantized.push(site.weightKey);
    out.fp32Bytes += 4 * site.inFeatures * site.outFeatures;
    out.storedBytes += storedBytes(f);
  }
  return out;
}

/** The quantized form a weight array was loaded in, if any. */
export function quantizedDtypeOf(data: unknown): BaseDtype | undefined {
  return quantizedFormOf(data)?.dtype;
}

/** The form a loaded model's linear weights compute in ('fp32' when none was quantized). */
export function modelBaseDtype(model: { sites: readonly QuantizableSite[]; weights: ReadonlyMap<string, { data: unknown }> }): BaseDtype {
  for (const s of model.sites) {
    const d = s.kind === 'embedding' ? undefined : quantizedDtypeOf(model.weights.get(s.weightKey)?.data);
    if (d) return d;
  }
  return 'fp32';
}

/**
 * `merged` (weights with adapters merged in, new float32 arrays where a merge
 * changed them) quantized as `source`'s linear weights were: a quantized base
 * with stacked adapters merged into it stays quantized. Returns `merged`.
 */
export function quantizeLike<W extends Map<string, { shape: number[]; data: Float32Array }>>(merged: W, sites: readonly QuantizableSite[], source: ReadonlyMap<string, { data: unknown }>): W {
  const dtype = modelBaseDtype({ sites, weights: source });
  if (dtype !== 'fp32') quantizeBase(merged, sites, dtype);
  return merged;
}

/** Bytes of a quantized weight's codes and scales (int4: the forward codes; training adds their transposed copy, as many bytes). */
export function storedBytes(f: QuantizedForm): number {
  return (QUANT_FORMATS[f.dtype].storedBytes as (f: QuantizedForm) => number)(f);
}
