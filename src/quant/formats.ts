// The quantized forms a frozen base weight can take (--base-dtype), one entry
// per dtype: how to quantize a float32 weight once at load, the float32
// weight it computes with, its stored bytes, and the arrays a saved quantized
// base holds of it (src/models/base_cache.ts: a new format needs no edit
// there). The products themselves are in src/quant/frozen_linear.ts.

import { dequantizeInt8, quantizeInt8, type Int8Weight } from './int8.ts';
import { dequantizeInt4, kBlocksOf, quantizeInt4, transposeInt4, type Int4Weight } from './int4.ts';
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

/** One array a saved quantized base holds of a weight (src/models/base_cache.ts), and its safetensors element type and shape. */
export type SavedArray = Int8Array | Uint8Array | Float32Array;
export interface SavedPart {
  dtype: 'I8' | 'U8' | 'F32';
  shape: number[];
}

type Form<D extends QuantDtype> = Extract<QuantizedForm, { dtype: D }>;

interface QuantFormat<D extends QuantDtype> {
  quantize(w: Float32Array, inFeatures: number, outFeatures: number, layout: Layout): Form<D>;
  /** W̃ as float32 [in, out]. */
  dequantize(f: Form<D>): Float32Array;
  storedBytes(f: Form<D>): number;
  /** The quantizer's settings (block size, tiles): a saved form made with others is not what a load would make, so it is not used. */
  settings: Record<string, number | boolean>;
  /** The arrays a saved form holds for an [in, out] weight, by part name: what a load checks the file against. */
  savedParts(inFeatures: number, outFeatures: number): Record<string, SavedPart>;
  /** The form's arrays under those part names. */
  arrays(f: Form<D>): Record<string, SavedArray>;
  /** The form back from its arrays (already checked against savedParts). */
  fromArrays(a: Record<string, SavedArray>, inFeatures: number, outFeatures: number): Form<D>;
}

const NF4_SETTINGS = { blockSize: NF4_DEFAULT_BLOCK };
const INT4_SETTINGS = { blockSize: INT4_TILE, tileRows: INT4_TILE, symmetric: false };

// int4's transposed copy is derived data (the same nibbles moved, the tile
// scales shared: no rounding), so a saved base does not hold it: it is rebuilt
// bit for bit on the first backward, and loads that only run forward never
// pay for it (saving it would double the file and the resident codes).
const int4Form = (q: Int4Weight): Form<'int4'> => ({ dtype: 'int4', q, transposed: lazy(() => transposeInt4(q)) });

export const QUANT_FORMATS: { [D in QuantDtype]: QuantFormat<D> } = {
  int8: {
    quantize: (w, i, o, layout) => ({ dtype: 'int8', q: quantizeInt8(w, i, o, layout) }),
    dequantize: (f) => dequantizeInt8(f.q),
    storedBytes: (f) => f.q.codes.byteLength + f.q.scales.byteLength,
    settings: {},
    savedParts: (i, o) => ({ codes: { dtype: 'I8', shape: [i, o] }, scales: { dtype: 'F32', shape: [o] } }),
    arrays: (f) => ({ codes: f.q.codes, scales: f.q.scales }),
    fromArrays: (a, i, o) => ({ dtype: 'int8', q: { codes: a.codes as Int8Array, scales: a.scales as Float32Array, inFeatures: i, outFeatures: o } }),
  },
  int4: {
    quantize: (w, i, o, layout) => int4Form(quantizeInt4(w, i, o, layout, INT4_SETTINGS)),
    dequantize: (f) => dequantizeInt4(f.q),
    storedBytes: (f) => f.q.packed.byteLength + f.q.scales.byteLength + (f.q.zeroPoints?.byteLength ?? 0),
    settings: INT4_SETTINGS,
    savedParts: (i, o) => {
      const kBlocks = kBlocksOf(i, INT4_TILE);
      return { packed: { dtype: 'U8', shape: [o, kBlocks, INT4_TILE / 2] }, scales: { dtype: 'F32', shape: [o, kBlocks] }, zero_points: { dtype: 'U8', shape: [o, Math.ceil(kBlocks / 2)] } };
    },
    arrays: (f) => {
      if (!f.q.zeroPoints) throw new Error('int4: a symmetric form (no zero points) is not what --base-dtype int4 makes; it cannot be saved as one');
      return { packed: f.q.packed, scales: f.q.scales, zero_points: f.q.zeroPoints };
    },
    fromArrays: (a, i, o) => int4Form({ packed: a.packed as Uint8Array, scales: a.scales as Float32Array, zeroPoints: a.zero_points as Uint8Array, inFeatures: i, outFeatures: o, blockSize: INT4_TILE, tileRows: INT4_TILE }),
  },
  nf4: {
    quantize: (w, i, o, layout) => ({ dtype: 'nf4', q: quantizeNf4(w, i, o, layout, NF4_SETTINGS.blockSize) }),
    dequantize: (f) => dequantizeNf4(f.q),
    storedBytes: (f) => f.q.packed.byteLength + f.q.absmax.byteLength,
    settings: NF4_SETTINGS,
    savedParts: (i, o) => ({ packed: { dtype: 'U8', shape: [Math.ceil((i * o) / 2)] }, absmax: { dtype: 'F32', shape: [Math.ceil((i * o) / NF4_SETTINGS.blockSize)] } }),
    arrays: (f) => ({ packed: f.q.packed, absmax: f.q.absmax }),
    fromArrays: (a, i, o) => ({ dtype: 'nf4', q: { packed: a.packed as Uint8Array, absmax: a.absmax as Float32Array, inFeatures: i, outFeatures: o, blockSize: NF4_SETTINGS.blockSize } }),
  },
};

/** W̃ of any quantized form as float32 [in, out] (TypeScript cannot pair a union member with its registry entry, hence the cast). */
export function dequantizeForm(f: QuantizedForm): Float32Array {
  return (QUANT_FORMATS[f.dtype].dequantize as (g: QuantizedForm) => Float32Array)(f);
}

/** The arrays a saved base holds of any quantized form (QUANT_FORMATS[dtype].savedParts names them). */
export function savedArraysOf(f: QuantizedForm): Record<string, SavedArray> {
  return (QUANT_FORMATS[f.dtype].arrays as (g: QuantizedForm) => Record<string, SavedArray>)(f);
}

/** A `dtype` form from the arrays a saved base holds (checked against QUANT_FORMATS[dtype].savedParts first). */
export function formFromArrays(dtype: QuantDtype, a: Record<string, SavedArray>, inFeatures: number, outFeatures: number): QuantizedForm {
  return QUANT_FORMATS[dtype].fromArrays(a, inFeatures, outFeatures);
}
