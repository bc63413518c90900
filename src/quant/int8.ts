// int8 = per-output-channel symmetric absmax quantization of a frozen weight:
// for each output channel j, s_j = max_i |W[j, i]| / 127 and
// Q[j, i] = round_half_even(W[j, i] / s_j) ∈ [-127, 127] (no zero point), so
// W ≈ diag(s)·Q. The codes are stored [in, out] (K×N), the layout
// onnxruntime's DynamicQuantizeMatMul reads as B with one scale per column;
// the same codes serve the input gradient (dX = (dY·diag(s))·Qᵀ).

/** A weight quantized to int8: codes [in, out] and one float32 scale per output channel. */
export interface Int8Weight {
  codes: Int8Array;
  scales: Float32Array;
  inFeatures: number;
  outFeatures: number;
}

/** Round half to even (as torch.round and onnxruntime's quantizers do). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Quantizes `w` (float32, [out, in] when layout is 'out_in' as torch's
 * nn.Linear, [in, out] when 'in_out' as GPT-2's Conv1D). The divisions run in
 * float32 (Math.fround) so a float32 implementation gets the same codes. An
 * all-zero channel gets scale 0 and zero codes.
 */
export function quantizeInt8(w: Float32Array, inFeatures: number, outFeatures: number, layout: 'in_out' | 'out_in'): Int8Weight {
  if (w.length !== inFeatures * outFeatures) {
    throw new Error(`quantizeInt8: weight has ${w.length} values, [${inFeatures} in, ${outFeatures} out] needs ${inFeatures * outFeatures}`);
  }
  const at = layout === 'out_in' ? (i: number, j: number) => w[j * inFeatures + i] : (i: number, j: number) => w[i * outFeatures + j];
  const scales = new Float32Array(outFeatures);
  const codes = new Int8Array(inFeatures * outFeatures);
  for (let j = 0; j < outFeatures; j++) {
    let max = 0;
    for (let i = 0; i < inFeatures; i++) {
      const v = at(i, j);
      if (!Number.isFinite(v)) throw new Error(`quantizeInt8: weight value ${v} at [in ${i}, out ${j}] is not finite`);
      max = Math.max(max, Math.abs(v));
    }
    const s = Math.fround(max / 127);
    scales[j] = s;
    if (s === 0) continue;
    for (let i = 0; i < inFeatures; i++) codes[i * outFeatures + j] = Math.max(-127, Math.min(127, roundHalfEven(Math.fround(at(i, j) / s))));
  }
  return { codes, scales, inFeatures, outFeatures };
}

/** diag(s)·Q back as float32 [in, out]: the weight the quantized base computes with. */
export function dequantizeInt8(q: Int8Weight): Float32Array {
  const out = new Float32Array(q.codes.length);
  for (let i = 0; i < q.inFeatures; i++) {
    for (let j = 0; j < q.outFeatures; j++) out[i * q.outFeatures + j] = q.codes[i * q.outFeatures + j] * q.scales[j];
  }
  return out;
}
