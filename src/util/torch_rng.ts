// torch's CPU random generator and torch.randperm on CPU, bit for bit, so that
// seeded choices PyTorch code makes (PEFT FourierFT's spectral locations:
// torch.randperm(out·in, generator=torch.Generator().manual_seed(seed))) can
// be regenerated here instead of stored.
//
// Sources (pytorch/pytorch): aten/src/ATen/core/MT19937RNGEngine.h (the
// engine: standard MT19937, seeded with the low 32 bits of the uint64 seed),
// aten/src/ATen/CPUGeneratorImpl.cpp (random() = one engine draw; random64()
// = (first draw << 32) | second draw), aten/src/ATen/native/TensorFactories.cpp
// (randperm_cpu).
//
// randperm_cpu has two algorithms:
//  - 'swap': r = 0..n−1; for i in 0..n−2: z = random() % (n−i), swap r[i], r[i+z].
//    torch 1.x and 2.x before pytorch PR #143682/#144735 (Dec 2024–Jan 2025)
//    run it for every n; later torch for n < 2^32/20 = 214,748,364 only.
//  - 'inside-out' (later torch, n ≥ 214,748,364):
//    for i in 0..n−1: z = random64() % (i+1); r[i] = r[z]; r[z] = i.
// `algorithm: 'current'` (default) picks as recent torch does; 'legacy' runs
// the swap loop for every n. Both agree for n < 214,748,364 (any layer up to
// e.g. 8192×22016). Checked against torch 1.13 (legacy) and torch 2.13
// (current), test/fixtures/torch_randperm.json; the first release with the
// switch (2.7, going by the PR dates) was not checked.

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER = 0x80000000;
const LOWER = 0x7fffffff;

/** x mod m for integers 0 ≤ x, 1 ≤ m, x + m ≤ 2^53: one division and an exact correction (faster than fmod). */
function mod(x: number, m: number): number {
  const r = x - Math.floor(x / m) * m;
  return r < 0 ? r + m : r >= m ? r - m : r;
}

/** torch's at::mt19937 (CPUGeneratorImpl's engine) after manual_seed(seed). */
export class TorchGenerator {
  private readonly mt = new Uint32Array(N);
  private left = 1;
  private next = 0;

  /** `seed`: what torch.Generator().manual_seed takes (0 ≤ seed < 2^64); only its low 32 bits matter. */
  constructor(seed: number | bigint) {
    const s = typeof seed === 'bigint' ? seed : Number.isSafeInteger(seed) ? BigInt(seed) : NaN;
    if (typeof s !== 'bigint' || s < 0n || s >= 1n << 64n) throw new Error(`TorchGenerator: seed must be an integer in [0, 2^64), got ${seed}`);
    this.mt[0] = Number(s & 0xffffffffn);
    for (let j = 1; j < N; j++) {
      const p = this.mt[j - 1];
      this.mt[j] = (Math.imul(1812433253, (p ^ (p >>> 30)) >>> 0) + j) >>> 0;
    }
  }

  private twist(): void {
    const mt = this.mt;
    let k = 0;
    for (; k < N - M; k++) {
      const y = (mt[k] & UPPER) | (mt[k + 1] & LOWER);
      mt[k] = mt[k + M] ^ (y >>> 1) ^ (mt[k + 1] & 1 ? MATRIX_A : 0);
    }
    for (; k < N - 1; k++) {
      const y = (mt[k] & UPPER) | (mt[k + 1] & LOWER);
      mt[k] = mt[k + M - N] ^ (y >>> 1) ^ (mt[k + 1] & 1 ? MATRIX_A : 0);
    }
    const y = (mt[N - 1] & UPPER) | (mt[0] & LOWER);
    mt[N - 1] = mt[M - 1] ^ (y >>> 1) ^ (mt[0] & 1 ? MATRIX_A : 0);
    this.left = N;
    this.next = 0;
  }

  /** CPUGeneratorImpl::random(): one 32-bit draw (unsigned). */
  random(): number {
    if (--this.left === 0) this.twist();
    let y = this.mt[this.next++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** CPUGeneratorImpl::random64() % m, exact for 1 ≤ m ≤ 2^36 (the 64-bit value is never formed). */
  random64Mod(m: number): number {
    const hi = this.random(), lo = this.random();
    // (hi·2^32 + lo) mod m with every intermediate (and mod's quotient·m) below 2^53: 2^32 = 2^16·2^16 beyond m = 2^20.
    let a = hi % m;
    if (m <= 0x100000) return mod(a * 4294967296 + lo, m);
    a = mod(a * 65536, m);
    a = mod(a * 65536, m);
    return mod(a + lo, m);
  }
}

/** n from which recent torch switches randperm_cpu to the inside-out shuffle (uint32 max / 20). */
export const RANDPERM_INSIDE_OUT_FROM = Math.floor(0xffffffff / 20);

export interface RandpermOptions {
  /** Only the first `count` entries (default n): O(count) memory, and for n below the switch O(count) time. */
  count?: number;
  /** 'current' (default): as torch since PR #144735; 'legacy': the swap loop for every n (torch before it, e.g. 1.13). */
  algorithm?: 'current' | 'legacy';
}

/**
 * torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:count]
 * (CPU, int64), as a Float64Array of exact integers.
 */
export function torchRandperm(n: number, seed: number | bigint, opts: RandpermOptions = {}): Float64Array {
  const count = opts.count ?? n;
  if (!Number.isSafeInteger(n) || n < 0 || n > 2 ** 36) throw new Error(`torchRandperm: n must be an integer in [0, 2^36], got ${n}`);
  if (!Number.isSafeInteger(count) || count < 0 || count > n) throw new Error(`torchRandperm: count must be an integer in [0, n=${n}], got ${count}`);
  const gen = new TorchGenerator(seed);
  const out = new Float64Array(count);
  if ((opts.algorithm ?? 'current') === 'current' && n >= RANDPERM_INSIDE_OUT_FROM) {
    // Inside-out: position p < count is written at step p (from a position ≤ p) and whenever a later
    // step draws z = p, so positions ≥ count need not be stored; every draw is still made.
    for (let i = 0; i < n; i++) {
      const z = gen.random64Mod(i + 1);
      if (i < count) out[i] = z === i ? i : out[z];
      if (z < count) out[z] = i;
    }
    return out;
  }
  // Swap loop: step i touches positions ≥ i only, so the first `count` are final after `count` steps.
  const steps = Math.min(count, n - 1);
  const dense = count * 4 >= n;
  const r = dense ? Float64Array.from({ length: n }, (_, i) => i) : null;
  const moved = new Map<number, number>(); // sparse r: position → value where it is not the identity
  const get = (p: number) => (r ? r[p] : (moved.get(p) ?? p));
  const set = (p: number, v: number) => (r ? (r[p] = v) : moved.set(p, v));
  for (let i = 0; i < steps; i++) {
    const j = i + (gen.random() % (n - i));
    const t = get(i);
    set(i, get(j));
    set(j, t);
  }
  for (let p = 0; p < count; p++) out[p] = get(p);
  return out;
}
