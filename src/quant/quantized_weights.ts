// Which frozen weights a model computes with in quantized form. The quantized
// form is attached to the weight's float32 array (a WeakMap keyed by the
// array), done once when the model is loaded: every graph any task builds
// from that model (training, evaluation, generation, serving) reads the same
// array through its LinearFn and so gets the quantized product, with no new
// argument threaded through the builders. Arrays that are not marked (a
// merged weight, a PiSSA residual computed later, another model's) keep the
// float32 product.

import { quantizeInt8, type Int8Weight } from './int8.ts';

const int8Forms = new WeakMap<Float32Array, Int8Weight>();

/** The int8 form `data` is computed with, if it was quantized. */
export function int8FormOf(data: unknown): Int8Weight | undefined {
  return data instanceof Float32Array ? int8Forms.get(data) : undefined;
}

/** Quantizes `data` (once: a second call returns the same form) and marks it. */
export function markInt8(data: Float32Array, inFeatures: number, outFeatures: number, layout: 'in_out' | 'out_in'): Int8Weight {
  const hit = int8Forms.get(data);
  if (hit) return hit;
  const q = quantizeInt8(data, inFeatures, outFeatures, layout);
  int8Forms.set(data, q);
  return q;
}
