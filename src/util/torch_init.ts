// torch's seeded CPU initializers, bit for bit, on top of TorchGenerator: what
// PEFT's VeRA and RandLoRA use to draw their shared frozen projections from
// `projection_prng_key`, so lorakit regenerates exactly PEFT's tensors.
//
// Sources (pytorch/pytorch): aten/src/ATen/native/cpu/DistributionTemplates.h
// (uniform_kernel: one random() per element in memory order), aten/src/ATen/
// core/TransformationHelper.h (uniform_real: x = (random() & (2^digits − 1)) ·
// 2^−digits, x·(to − from) + from in float, fused (an FMA: one rounding); float64 would take random64(), not
// needed here), c10/util/BFloat16.h (float → bfloat16 rounds to nearest even),
// torch/nn/init.py (kaiming_uniform_). torch 2.x changed the low-precision
// details (UniformOptions.algorithm); both variants were pinned down against
// torch 1.13 and 2.13 (tools/reference/torch_init.py →
// test/fixtures/torch_init.json).
import type { TorchGenerator } from './torch_rng.ts';

const f32 = Math.fround;
const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** float32 → bfloat16 (round to nearest even, as c10::BFloat16), returned as a number. */
export function bf16(v: number): number {
  F32[0] = v;
  const u = U32[0];
  if (Number.isNaN(F32[0])) return NaN;
  U32[0] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 0) & 0xffff0000;
  return F32[0];
}

/**
 * fround(a·b + c) with one rounding (a fused multiply-add in float, as torch's
 * compiled kernel does it) for float32 a, b, c: a·b is exact in double; the
 * sum's double rounding matters only at a float midpoint, settled by the
 * exact error of the addition.
 */
export function fmaF32(a: number, b: number, c: number): number {
  const p = a * b, s = p + c;
  const bb = s - p, e = (p - (s - bb)) + (c - bb); // p + c = s + e exactly (TwoSum)
  const r = f32(s);
  const m = s - r;
  if (e === 0 || m === 0) return r;
  const other = r + 2 * m;
  if (f32(other) !== other) return r; // s is not halfway between two floats
  return (e > 0) === (m > 0) ? other : r;
}

export type InitDtype = 'float32' | 'bfloat16';

export interface UniformOptions {
  dtype?: InitDtype;
  /**
   * 'current' (default): torch 2.x (checked: 2.13): x = (random() & (2^24 − 1))·2^−24
   * for every dtype, x·(to − from) + from in float, cast to the dtype, and a
   * value equal to `to` (after the cast) replaced by `from`. 'legacy': torch
   * 1.x (checked: 1.13): the dtype's own digits (bfloat16: 8) with from, to
   * and (to − from) in the dtype, and no replacement.
   */
  algorithm?: 'current' | 'legacy';
}

/**
 * tensor.uniform_(from, to, generator=gen) for a contiguous CPU tensor of
 * `count` elements (values as float32; bfloat16 values are exact).
 */
export function torchUniform(gen: TorchGenerator, count: number, from: number, to: number, opts: UniformOptions = {}): Float32Array {
  const dtype = opts.dtype ?? 'float32';
  const cast = dtype === 'float32' ? f32 : (v: number) => bf16(f32(v));
  const out = new Float32Array(count);
  if ((opts.algorithm ?? 'current') === 'current') {
    const lo = f32(from), span = f32(f32(to) - lo), toC = cast(to), fromC = cast(from);
    for (let i = 0; i < count; i++) {
      const v = cast(fmaF32((gen.random() & 0xffffff) * 2 ** -24, span, lo));
      out[i] = v === toC ? fromC : v;
    }
  } else if (dtype === 'float32') {
    const lo = f32(from), span = f32(f32(to) - lo);
    for (let i = 0; i < count; i++) out[i] = fmaF32((gen.random() & 0xffffff) * 2 ** -24, span, lo);
  } else {
    // c10::BFloat16 operands: from, to and (to − from) are each rounded to bfloat16.
    const lo = cast(from), span = cast(cast(to) - lo);
    for (let i = 0; i < count; i++) out[i] = cast(fmaF32((gen.random() & 0xff) * 2 ** -8, span, lo));
  }
  return out;
}

/**
 * torch.nn.init.kaiming_uniform_'s bound (mode 'fan_in', nonlinearity
 * 'leaky_relu'): gain = √(2 / (1 + a²)), bound = √3 · gain / √fan_in, in the
 * same double operations as torch/nn/init.py.
 */
export function kaimingUniformBound(fanIn: number, a = 0): number {
  const gain = Math.sqrt(2.0 / (1 + a * a));
  const std = gain / Math.sqrt(fanIn);
  return Math.sqrt(3.0) * std;
}

/** fan_in of a tensor shape as torch computes it: size(1) · ∏ size(2:). */
export function fanIn(shape: number[]): number {
  if (shape.length < 2) throw new Error(`fan_in needs a tensor of at least 2 dimensions, got shape [${shape}]`);
  return shape.slice(1).reduce((p, d) => p * d, 1);
}

/**
 * tensor.std() (unbiased) of bfloat16 values as torch returns it: accumulated
 * in higher precision, rounded once to bfloat16.
 */
export function stdBf16(x: Float32Array): number {
  let mean = 0;
  for (let i = 0; i < x.length; i++) mean += x[i];
  mean /= x.length;
  let v = 0;
  for (let i = 0; i < x.length; i++) v += (x[i] - mean) ** 2;
  return bf16(f32(Math.sqrt(v / Math.max(1, x.length - 1))));
}

/** x / s elementwise for bfloat16 tensors (float division, rounded to bfloat16), in place. */
export function divBf16(x: Float32Array, s: number): Float32Array {
  for (let i = 0; i < x.length; i++) x[i] = bf16(f32(x[i] / s));
  return x;
}
