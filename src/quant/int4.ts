// int4 = blockwise 4-bit quantization of a frozen weight as onnxruntime's
// com.microsoft MatMulNBits (bits 4) reads it: for each output channel n and
// each block of `blockSize` consecutive inputs k, one float32 scale s and
// (asymmetric) one 4-bit zero point z; W[n, k] ≈ (q[n, k] − z)·s with
// q ∈ [0, 15]. Asymmetric: the block's range [min(0, min w), max(0, max w)]
// over 15 steps, z = round(−min/s); symmetric: s = max|w|/7, z = 8 (the
// kernel's default when no zero points are given). Layout (MatMulNBits' B):
// packed [N, kBlocks, blockSize/2] bytes, the even k in the low nibble; the
// last block padded with the code of 0; zero points packed two per byte along
// the blocks of a row, each row padded to whole bytes.

import { roundHalfEven } from './int8.ts';

export interface Int4Weight {
  /** Codes, [out, kBlocks, blockSize / 2] bytes, low nibble = even k. */
  packed: Uint8Array;
  /** [out, kBlocks] float32. */
  scales: Float32Array;
  /** [out, ceil(kBlocks / 2)] bytes, low nibble = even block; absent when symmetric (zero point 8). */
  zeroPoints?: Uint8Array;
  inFeatures: number;
  outFeatures: number;
  blockSize: number;
  /** Outputs that share a block's scale and zero point: 1 (per row) or blockSize (square tiles). */
  tileRows: number;
}

export const kBlocksOf = (inFeatures: number, blockSize: number) => Math.ceil(inFeatures / blockSize);

/**
 * Quantizes `w` (float32, [out, in] when layout is 'out_in' as nn.Linear,
 * [in, out] when 'in_out' as GPT-2's Conv1D). Float32 divisions and
 * round-half-even, so a float32 implementation gets the same codes.
 */
export function quantizeInt4(w: Float32Array, inFeatures: number, outFeatures: number, layout: 'in_out' | 'out_in', o: { blockSize: number; symmetric: boolean; tileRows?: number }): Int4Weight {
  const { blockSize, symmetric } = o, tileRows = o.tileRows ?? 1;
  if (w.length !== inFeatures * outFeatures) throw new Error(`quantizeInt4: weight has ${w.length} values, [${inFeatures} in, ${outFeatures} out] needs ${inFeatures * outFeatures}`);
  if (!(blockSize >= 16 && (blockSize & (blockSize - 1)) === 0)) throw new Error(`quantizeInt4: block size must be a power of 2 ≥ 16 (MatMulNBits), got ${blockSize}`);
  const at = layout === 'out_in' ? (k: number, n: number) => w[n * inFeatures + k] : (k: number, n: number) => w[k * outFeatures + n];
  const kBlocks = kBlocksOf(inFeatures, blockSize), blob = blockSize / 2, zpRow = Math.ceil(kBlocks / 2);
  const packed = new Uint8Array(outFeatures * kBlocks * blob);
  const scales = new Float32Array(outFeatures * kBlocks);
  const zeroPoints = symmetric ? undefined : new Uint8Array(outFeatures * zpRow);
  // Each tile's range, taken once for its tileRows rows (not once per row: 32× the reads at 32-row tiles).
  const tileLo = new Float64Array(kBlocks), tileHi = new Float64Array(kBlocks), tileAmax = new Float64Array(kBlocks);
  for (let n = 0; n < outFeatures; n++) {
    if (n % tileRows === 0) {
      const n1 = Math.min(outFeatures, n + tileRows);
      for (let b = 0; b < kBlocks; b++) {
        const k0 = b * blockSize, k1 = Math.min(inFeatures, k0 + blockSize);
        let lo = 0, hi = 0, amax = 0;
        for (let m = n; m < n1; m++) {
          for (let k = k0; k < k1; k++) {
            const v = at(k, m);
            if (!Number.isFinite(v)) throw new Error(`quantizeInt4: weight value ${v} at [in ${k}, out ${m}] is not finite`);
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
            amax = Math.max(amax, Math.abs(v));
          }
        }
        tileLo[b] = lo;
        tileHi[b] = hi;
        tileAmax[b] = amax;
      }
    }
    for (let b = 0; b < kBlocks; b++) {
      const k0 = b * blockSize, k1 = Math.min(inFeatures, k0 + blockSize);
      const lo = tileLo[b], hi = tileHi[b], amax = tileAmax[b];
      const s = Math.fround(symmetric ? amax / 7 : (hi - lo) / 15);
      const z = symmetric || s === 0 ? 8 : Math.max(0, Math.min(15, roundHalfEven(Math.fround(-lo / s))));
      scales[n * kBlocks + b] = s;
      if (zeroPoints) zeroPoints[n * zpRow + (b >> 1)] |= z << ((b & 1) * 4);
      for (let k = k0; k < k0 + blockSize; k++) {
        const q = k < k1 && s !== 0 ? Math.max(0, Math.min(15, roundHalfEven(Math.fround(at(k, n) / s)) + z)) : z;
        packed[(n * kBlocks + b) * blob + ((k - k0) >> 1)] |= q << (((k - k0) & 1) * 4);
      }
    }
  }
  return { packed, scales, zeroPoints, inFeatures, outFeatures, blockSize, tileRows };
}

/** The 4-bit code of W[n, k] and its block's zero point. */
export function int4CodeAt(q: Int4Weight, k: number, n: number): { code: number; zero: number; scale: number } {
  const kBlocks = kBlocksOf(q.inFeatures, q.blockSize), b = Math.floor(k / q.blockSize), r = k - b * q.blockSize;
  const code = (q.packed[(n * kBlocks + b) * (q.blockSize / 2) + (r >> 1)] >> ((r & 1) * 4)) & 15;
  const zero = q.zeroPoints ? (q.zeroPoints[n * Math.ceil(kBlocks / 2) + (b >> 1)] >> ((b & 1) * 4)) & 15 : 8;
  return { code, zero, scale: q.scales[n * kBlocks + b] };
}

/**
 * The same codes as a weight of W̃ᵀ (outFeatures inputs, inFeatures outputs),
 * packed along the other dimension: with square tiles each tile's scale and
 * zero point serve its rows and its columns alike, so this dequantizes to
 * exactly W̃ᵀ (no float32 weight needed). Padding takes the tile's zero point.
 */
export function transposeInt4(q: Int4Weight): Int4Weight {
  if (q.tileRows !== q.blockSize) throw new Error(`transposeInt4: needs square tiles (tileRows ${q.tileRows} ≠ block ${q.blockSize}); row blocks would need quantizing again`);
  const bs = q.blockSize, inT = q.outFeatures, outT = q.inFeatures;
  const kBlocks = kBlocksOf(q.inFeatures, bs), kBlocksT = kBlocksOf(inT, bs), blob = bs / 2, zpRowT = Math.ceil(kBlocksT / 2);
  const packed = new Uint8Array(outT * kBlocksT * blob), scales = new Float32Array(outT * kBlocksT);
  const zeroPoints = q.zeroPoints ? new Uint8Array(outT * zpRowT) : undefined;
  for (let k = 0; k < outT; k++) {
    for (let b = 0; b < kBlocksT; b++) {
      const tile = int4CodeAt(q, k, b * bs); // the tile of outputs b·bs… and inputs around k
      scales[k * kBlocksT + b] = q.scales[b * bs * kBlocks + Math.floor(k / bs)];
      if (zeroPoints) zeroPoints[k * zpRowT + (b >> 1)] |= tile.zero << ((b & 1) * 4);
      for (let r = 0; r < bs; r++) {
        const n = b * bs + r;
        const code = n < inT ? int4CodeAt(q, k, n).code : tile.zero;
        packed[(k * kBlocksT + b) * blob + (r >> 1)] |= code << ((r & 1) * 4);
      }
    }
  }
  return { packed, scales, zeroPoints, inFeatures: inT, outFeatures: outT, blockSize: bs, tileRows: bs };
}

/** (q − z)·s back as float32 [in, out]: the weight the int4 base computes with. */
export function dequantizeInt4(q: Int4Weight): Float32Array {
  const out = new Float32Array(q.inFeatures * q.outFeatures);
  for (let k = 0; k < q.inFeatures; k++) {
    for (let n = 0; n < q.outFeatures; n++) {
      const { code, zero, scale } = int4CodeAt(q, k, n);
      out[k * q.outFeatures + n] = (code - zero) * scale;
    }
  }
  return out;
}
