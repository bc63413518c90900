// Which frozen weights a model computes with in quantized form. The quantized
// form is attached to the weight's float32 array (a WeakMap keyed by the
// array), done once when the model is loaded: every graph any task builds
// from that model (training, evaluation, generation, serving) reads the same
// array through its LinearFn and so gets the quantized product, with no new
// argument threaded through the builders. Arrays that are not marked (a
// merged weight, a PiSSA residual computed later, another model's) keep the
// float32 product.

import type { Int8Weight } from './int8.ts';
import { dequantizeForm, QUANT_FORMATS, type QuantDtype, type QuantizedForm } from './formats.ts';

const forms = new WeakMap<Float32Array, QuantizedForm>();

/** The quantized form `data` is computed with, if it was quantized. */
export function quantizedFormOf(data: unknown): QuantizedForm | undefined {
  return data instanceof Float32Array ? forms.get(data) : undefined;
}

/** Quantizes `data` to `dtype` (once: a second call returns the same form) and marks it. */
export function markQuantized(data: Float32Array, dtype: QuantDtype, inFeatures: number, outFeatures: number, layout: 'in_out' | 'out_in'): QuantizedForm {
  const hit = forms.get(data);
  if (hit) {
    if (hit.dtype !== dtype) throw new Error(`a weight quantized to ${hit.dtype} cannot also be ${dtype}: load the model again`);
    return hit;
  }
  const f = QUANT_FORMATS[dtype].quantize(data, inFeatures, outFeatures, layout);
  forms.set(data, f);
  return f;
}

/** The int8 form `data` is computed with, if it was quantized to int8. */
export function int8FormOf(data: unknown): Int8Weight | undefined {
  const f = quantizedFormOf(data);
  return f?.dtype === 'int8' ? f.q : undefined;
}

export function markInt8(data: Float32Array, inFeatures: number, outFeatures: number, layout: 'in_out' | 'out_in'): Int8Weight {
  return (markQuantized(data, 'int8', inFeatures, outFeatures, layout) as Extract<QuantizedForm, { dtype: 'int8' }>).q;
}

// Stand-ins: once a weight is quantized, the model's weight map can drop its
// float32 values (a quarter of the memory is the point of a quantized base).
// The entry then holds a zero-length Float32Array that carries the same
// quantized form (the base computes as before) and dequantizes on demand for
// the few readers of the values: merges, PiSSA-like inits, trainable copies,
// methods that factor the frozen weight.
const standIns = new WeakMap<Float32Array, () => Float32Array>();

/** Replaces a quantized weight's values by a zero-length stand-in (its float32 array can then be freed). */
export function dropFloat32(data: Float32Array, layout: 'in_out' | 'out_in'): Float32Array {
  if (standIns.has(data)) return data;
  const f = forms.get(data);
  if (!f) throw new Error('dropFloat32: the weight has no quantized form; quantize it first (markQuantized)');
  return formStandIn(f, layout);
}

/** A stand-in for a weight known only by its quantized form (e.g. read from a saved quantized base: src/models/base_cache.ts). */
export function formStandIn(f: QuantizedForm, layout: 'in_out' | 'out_in'): Float32Array {
  const s = standIn(() => dequantizeInLayout(f, layout));
  forms.set(s, f);
  return s;
}

/** A zero-length stand-in whose float32 values `dequantize` gives back (any quantized form registers its own on it). */
export function standIn(dequantize: () => Float32Array): Float32Array {
  const s = new Float32Array(0);
  standIns.set(s, dequantize);
  return s;
}

/** True for a stand-in whose float32 values were dropped. */
export function isStandIn(data: unknown): boolean {
  return data instanceof Float32Array && standIns.has(data);
}

/** The weight's float32 values in its own layout: `data` itself, or for a stand-in the dequantized weight (a new array each call). */
export function float32Of(data: Float32Array): Float32Array {
  const dequantize = standIns.get(data);
  return dequantize ? dequantize() : data;
}

/** The weight a quantized form computes with, as float32 in `layout`. */
function dequantizeInLayout(f: QuantizedForm, layout: 'in_out' | 'out_in'): Float32Array {
  const inOut = dequantizeForm(f);
  if (layout === 'in_out') return inOut;
  const { inFeatures: n, outFeatures: m } = f.q, out = new Float32Array(m * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) out[j * n + i] = inOut[i * m + j];
  return out;
}
