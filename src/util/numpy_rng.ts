// NumPy's legacy global generator (np.random.seed(s); np.random.random_sample;
// np.random.choice without replacement, with p), bit for bit, so that seeded
// draws made by official Python code (DUQGen's document sampling) are
// reproduced here.
//
// Sources (numpy/numpy): random/_mt19937.pyx _legacy_seeding (an integer seed
// → mt19937_seed, Knuth's init_genrand: the same engine and seeding as torch's
// CPU generator, src/util/torch_rng.ts), random/src/legacy/legacy-distributions
// + distributions.c (random_standard_uniform = legacy_double: (a >> 5)·2^26 +
// (b >> 6), / 2^53), random/mtrand.pyx RandomState.choice (replace=False with
// p: repeated rounds of uniforms, each looked up in the renormalized CDF of
// the not-yet-chosen items with searchsorted(side='right'), keeping each
// round's new items in order of first appearance).

import { TorchGenerator } from './torch_rng.ts';

export class NumpyRandomState {
  private readonly mt: TorchGenerator;

  /** np.random.seed(seed): 0 ≤ seed < 2^32. */
  constructor(seed: number) {
    if (!(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32)) throw new Error(`NumpyRandomState: seed must be an integer in [0, 2^32), got ${seed}`);
    this.mt = new TorchGenerator(seed);
  }

  /** np.random.random_sample(): a double in [0, 1) from two 32-bit draws. */
  randomSample(): number {
    const a = this.mt.random() >>> 5, b = this.mt.random() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /**
   * np.random.choice(n, size, replace=False, p=p): `size` distinct indices in
   * [0, n), drawn with probabilities p (which must sum to 1 within √eps, as
   * NumPy checks).
   */
  choiceWithoutReplacement(p: ArrayLike<number>, size: number): number[] {
    const n = p.length;
    if (!(Number.isInteger(size) && size >= 0)) throw new Error(`choice: size must be a non-negative integer, got ${size}`);
    if (size > n) throw new Error(`choice: cannot take a larger sample (${size}) than the population (${n}) without replacement`);
    let total = 0, nonzero = 0;
    for (let i = 0; i < n; i++) {
      if (!(p[i] >= 0)) throw new Error('choice: probabilities are not non-negative');
      total += p[i];
      if (p[i] > 0) nonzero++;
    }
    if (Math.abs(total - 1) > Math.sqrt(2.220446049250313e-16)) throw new Error(`choice: probabilities do not sum to 1 (${total})`);
    if (nonzero < size) throw new Error(`choice: fewer non-zero entries in p (${nonzero}) than size (${size})`);
    const q = Float64Array.from(p);
    const found: number[] = [];
    const cdf = new Float64Array(n);
    while (found.length < size) {
      const x = Array.from({ length: size - found.length }, () => this.randomSample());
      for (const i of found) q[i] = 0;
      let c = 0;
      for (let i = 0; i < n; i++) cdf[i] = c += q[i];
      const last = cdf[n - 1];
      for (let i = 0; i < n; i++) cdf[i] /= last;
      const seen = new Set<number>();
      for (const u of x) {
        const j = searchsortedRight(cdf, u);
        if (!seen.has(j)) {
          seen.add(j);
          found.push(j);
        }
      }
    }
    return found;
  }
}

/** The first index i with a[i] > x (np.searchsorted(a, x, side='right')). */
function searchsortedRight(a: Float64Array, x: number): number {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
