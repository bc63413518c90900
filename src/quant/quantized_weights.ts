// Which frozen weights a model computes with in quantized form. The quantized
// form is attached to the weight's float32 array (a WeakMap keyed by the
// array), done once when the model is loaded: every graph any task builds
// from that model (training, evaluation, generation, serving) reads the same
// array through its LinearFn and so gets the quantized product, with no new
// argument threaded through the builders. Arrays that are not marked (a
// merged weight, a PiSSA residual computed later, another model's) keep the
// float32 product.

import type { Int8Weight } from './int8.ts';
import { QUANT_FORMATS, type QuantDtype, type QuantizedForm } from './formats.ts';

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
