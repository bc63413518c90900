// The quantized forms a frozen base weight can take (--base-dtype), one entry
// per dtype: how to quantize a float32 weight once at load, and its stored
// bytes. The products themselves are in src/quant/frozen_linear.ts.

import { quantizeInt8, type Int8Weight } from './int8.ts';
import { quantizeInt4, transposeInt4, type Int4Weight } from './int4.ts';
import { quantizeNf4, NF4_DEFAULT_BLOCK, type Nf4Weight } from './nf4.ts';

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

export const QUANT_FORMATS: { [D in QuantDtype]: { quantize(w: Float32Array, inFeatures: number, outFeatures: number, layout: Layout): Extract<QuantizedForm, { dtype: D }>; storedBytes(f: Extract<QuantizedForm, { dtype: D }>): number } } = {
  int8: {
    quantize: (w, i, o, layout) => ({ dtype: 'int8', q: quantizeInt8(w, i, o, layout) }),
    storedBytes: (f) => f.q.codes.byteLength + f.q.scales.byteLength,
  },
  int4: {
    quantize: (w, i, o, layout) => {
      const opts = { blockSize: INT4_TILE, tileRows: INT4_TILE, symmetric: false };
      const q = quantizeInt4(w, i, o, layout, opts);
      return { dtype: 'int4', q, transposed: lazy(() => transposeInt4(q)) };
    },
    storedBytes: (f) => f.q.packed.byteLength + f.q.scales.byteLength + (f.q.zeroPoints?.byteLength ?? 0),
  },
  nf4: {
    quantize: (w, i, o, layout) => ({ dtype: 'nf4', q: quantizeNf4(w, i, o, layout, NF4_DEFAULT_BLOCK) }),
    storedBytes: (f) => f.q.packed.byteLength + f.q.absmax.byteLength,
  },
};
