// nf4 = bitsandbytes' 4-bit NormalFloat (QLoRA, Dettmers et al. 2023): the
// weight, flattened in nn.Linear's [out, in] order, is cut into blocks of
// `blockSize` values (64 in QLoRA); each block is divided by its absmax and
// each value becomes the index of the nearest of 16 fixed levels (the
// quantiles of N(0, 1) scaled to [−1, 1], with an exact 0), so
// W ≈ NF4[code]·absmax. Layout (bitsandbytes', and onnxruntime's
// com.microsoft MatMulBnb4 B input): two codes per byte, the even flat index
// in the HIGH nibble. No double quantization: absmax stays float32 (0.5 bit
// per weight at block 64).

import { NF4_LEVELS } from '../graph/quantized_4bit.ts';

export { NF4_LEVELS };
/** Midpoints between neighbouring levels: a value above the i-th gets a code > i (a tie goes to the lower level). */
const MIDPOINTS = Float32Array.from({ length: 15 }, (_, i) => (NF4_LEVELS[i] + NF4_LEVELS[i + 1]) / 2);

export const NF4_DEFAULT_BLOCK = 64;

export interface Nf4Weight {
  /** ceil(out·in / 2) bytes: codes of W [out, in] flattened, even index in the high nibble. */
  packed: Uint8Array;
  /** One float32 absmax per block of the flattened weight: ceil(out·in / blockSize). */
  absmax: Float32Array;
  inFeatures: number;
  outFeatures: number;
  blockSize: number;
}

function nearestLevel(x: number): number {
  let code = 0;
  while (code < 15 && x > MIDPOINTS[code]) code++;
  return code;
}

/** Quantizes `w` ([out, in] when layout is 'out_in', [in, out] when 'in_out'); x·(1/absmax) in float32. */
export function quantizeNf4(w: Float32Array, inFeatures: number, outFeatures: number, layout: 'in_out' | 'out_in', blockSize = NF4_DEFAULT_BLOCK): Nf4Weight {
  const numel = inFeatures * outFeatures;
  if (w.length !== numel) throw new Error(`quantizeNf4: weight has ${w.length} values, [${inFeatures} in, ${outFeatures} out] needs ${numel}`);
  if (![16, 32, 64, 128, 256].includes(blockSize)) throw new Error(`quantizeNf4: block size must be 16, 32, 64, 128 or 256 (MatMulBnb4), got ${blockSize}`);
  // flat index f = n·in + k (nn.Linear order) whatever the stored layout
  const at = layout === 'out_in' ? (f: number) => w[f] : (f: number) => w[(f % inFeatures) * outFeatures + Math.floor(f / inFeatures)];
  const blocks = Math.ceil(numel / blockSize);
  const absmax = new Float32Array(blocks), packed = new Uint8Array(Math.ceil(numel / 2));
  for (let b = 0; b < blocks; b++) {
    const f0 = b * blockSize, f1 = Math.min(numel, f0 + blockSize);
    let m = 0;
    for (let f = f0; f < f1; f++) {
      const v = at(f);
      if (!Number.isFinite(v)) throw new Error(`quantizeNf4: weight value ${v} at [in ${f % inFeatures}, out ${Math.floor(f / inFeatures)}] is not finite`);
      m = Math.max(m, Math.abs(v));
    }
    absmax[b] = m;
    const inv = m === 0 ? 0 : Math.fround(1 / m);
    for (let f = f0; f < f1; f++) packed[f >> 1] |= nearestLevel(Math.fround(at(f) * inv)) << ((f & 1) === 0 ? 4 : 0);
  }
  return { packed, absmax, inFeatures, outFeatures, blockSize };
}

/** NF4[code]·absmax back as float32 [in, out]: the weight the nf4 base computes with. */
export function dequantizeNf4(q: Nf4Weight): Float32Array {
  const out = new Float32Array(q.inFeatures * q.outFeatures);
  for (let n = 0; n < q.outFeatures; n++) {
    for (let k = 0; k < q.inFeatures; k++) {
      const f = n * q.inFeatures + k;
      const code = (q.packed[f >> 1] >> ((f & 1) === 0 ? 4 : 0)) & 15;
      out[k * q.outFeatures + n] = Math.fround(NF4_LEVELS[code] * q.absmax[Math.floor(f / q.blockSize)]);
    }
  }
  return out;
}
