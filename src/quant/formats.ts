// The quantized forms a frozen base weight can take (--base-dtype), one entry
// per dtype: how to quantize a float32 weight once at load, the float32
// weight it computes with, and its stored bytes. The products themselves are in src/quant/frozen_linear.ts.

import { dequantizeInt8, quantizeInt8, type Int8Weight } from './int8.ts';
import { dequantizeInt4, quantizeInt4, transposeInt4, type Int4Weight } from './int4.ts';
import { dequantizeNf4, quantizeNf4, NF4_DEFAULT_BLOCK, type Nf4Weight } from './nf4.ts';

type Layout = 'in_out' | 'out_in';

/**
 * int4's block along K, and the side of its square tiles: one scale and zero
 * point per 32 outputs × 32 inputs, so the copy packed along the outputs (for
 * the input gradient) holds the same codes and dequantizes to exactly W̃ᵀ.
 * Measured in bench/quant_backward.ts (docs/results/quantized_base.md).
 */
export const INT4_TILE = 32;

export type QuantizedForm =
  | { dtype: 'int8'; q: Int8Weight }
  | { dtype: 'int4'; q: Int4Weight; /** W̃ᵀ's codes (made on first use: training only). */ transposed: () => Int4Weight }
  | { dtype: 'nf4'; q: Nf4Weight };
export type QuantDtype = QuantizedForm['dtype'];

function lazy<T>(make: () => T): () => T {
  let v: T | undefined;
  return () => (v ??= make());
}

export const QUANT_FORMATS: { [D in QuantDtype]: { quantize(w: Float32Array, inFeatures: number, outFeatures: number, layout: Layout): Extract<QuantizedForm, { dtype: D }>; /** W̃ as float32 [in, out]. */ dequantize(f: Extract<QuantizedForm, { dtype: D }>): Float32Array; storedBytes(f: Extract<QuantizedForm, { dtype: D }>): number } } = {
  int8: {
    quantize: (w, i, o, layout) => ({ dtype: 'int8', q: quantizeInt8(w, i, o, layout) }),
    dequantize: (f) => dequantizeInt8(f.q),
    storedBytes: (f) => f.q.codes.byteLength + f.q.scales.byteLength,
  },
  int4: {
    quantize: (w, i, o, layout) => {
      const opts = { blockSize: INT4_TILE, tileRows: INT4_TILE, symmetric: false };
      const q = quantizeInt4(w, i, o, layout, opts);
      return { dtype: 'int4', q, transposed: lazy(() => transposeInt4(q)) };
    },
    dequantize: (f) => dequantizeInt4(f.q),
    storedBytes: (f) => f.q.packed.byteLength + f.q.scales.byteLength + (f.q.zeroPoints?.byteLength ?? 0),
  },
  nf4: {
    quantize: (w, i, o, layout) => ({ dtype: 'nf4', q: quantizeNf4(w, i, o, layout, NF4_DEFAULT_BLOCK) }),
    dequantize: (f) => dequantizeNf4(f.q),
    storedBytes: (f) => f.q.packed.byteLength + f.q.absmax.byteLength,
  },
};

/** W̃ of any quantized form as float32 [in, out] (TypeScript cannot pair a union member with its registry entry, hence the cast). */
export function dequantizeForm(f: QuantizedForm): Float32Array {
  return (QUANT_FORMATS[f.dtype].dequantize as (g: QuantizedForm) => Float32Array)(f);
}
