/**
 * Seeded, reproducible pseudo-random numbers.
 *
 * Generator: xoshiro128** (Blackman & Vigna), 128-bit state, 32-bit outputs,
 * period 2^128 - 1. The state is seeded from a 64-bit key through splitmix64,
 * so nearby seeds (0, 1, 2, ...) give unrelated streams.
 *
 * - `uniform()` returns a double in [0, 1) with 53 random bits.
 * - `normal()` uses Box-Muller and caches the second value; the cache is part
 *   of `state()`, so a restored generator continues bit-for-bit.
 * - `fork(label)` derives an independent generator from this generator's *key*
 *   (its seed, not its current position) and the label: `fork("data")` gives
 *   the same stream no matter how many numbers the parent has drawn. Forks of
 *   forks chain: `rng.fork("a").fork("b")`.
 *
 * Everything is pure JavaScript with 32-bit integer ops: the same seed gives
 * the same numbers on every platform and in the browser.
 */

const MASK64 = (1n << 64n) - 1n;

/** A JSON-serializable snapshot of a generator (see {@link Rng.state}). */
export interface RngState {
  algo: "xoshiro128**";
  /** The four 32-bit state words (unsigned). */
  s: [number, number, number, number];
  /** The 64-bit key forks derive from, as 16 hex digits. */
  key: string;
  /** The cached second Box-Muller value, or null. */
  spare: number | null;
}

export type Seed = number | bigint | string;

function splitmix64(x: bigint): [bigint, bigint] {
  // returns [next state, output]
  const state = (x + 0x9e3779b97f4a7c15n) & MASK64;
  let z = state;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  z = z ^ (z >> 31n);
  return [state, z];
}

/** FNV-1a 64-bit over the UTF-8 bytes of a string. */
function hashString(s: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(s)) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & MASK64;
  }
  return h;
}

function seedToKey(seed: Seed): bigint {
  if (typeof seed === "bigint") return BigInt.asUintN(64, seed);
  if (typeof seed === "string") return splitmix64(hashString(seed))[1];
  if (!Number.isSafeInteger(seed)) {
    throw new TypeError(`Rng seed must be a safe integer, a bigint or a string; got ${seed}`);
  }
  return BigInt.asUintN(64, BigInt(seed));
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private key: bigint;
  private spare: number | null = null;

  constructor(seed: Seed = 0) {
    this.key = seedToKey(seed);
    this.reseedFromKey();
  }

  private reseedFromKey(): void {
    let x = this.key;
    let a: bigint;
    let b: bigint;
    [x, a] = splitmix64(x);
    [x, b] = splitmix64(x);
    this.s0 = Number(a & 0xffffffffn) >>> 0;
    this.s1 = Number(a >> 32n) >>> 0;
    this.s2 = Number(b & 0xffffffffn) >>> 0;
    this.s3 = Number(b >> 32n) >>> 0;
    // xoshiro must not start from the all-zero state (splitmix64 never gives
    // two zero outputs in a row, but be explicit).
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
    this.spare = null;
  }

  /** Next raw 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform double in [0, 1), 53 random bits. */
  uniform(): number {
    const a = this.nextUint32() >>> 5; // 27 bits
    const b = this.nextUint32() >>> 6; // 26 bits
    return (a * 67108864 + b) / TWO_POW_53;
  }

  /** Uniform double in [lo, hi). */
  uniformRange(lo: number, hi: number): number {
    if (!(hi >= lo)) throw new RangeError(`uniformRange: need lo <= hi, got ${lo}, ${hi}`);
    const x = lo + (hi - lo) * this.uniform();
    // guard the rare rounding up to hi
    return x < hi ? x : lo;
  }

  /** Standard normal N(0, 1) (or N(mean, std)) by Box-Muller. */
  normal(mean = 0, std = 1): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return mean + std * z;
    }
    let u1 = this.uniform();
    while (u1 === 0) u1 = this.uniform(); // log(0) guard
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    this.spare = r * Math.sin(theta);
    return mean + std * r * Math.cos(theta);
  }

  /** Uniform integer in [0, n), unbiased. n must be a positive safe integer. */
  int(n: number): number {
    if (!Number.isSafeInteger(n) || n <= 0) {
      throw new RangeError(`int(n): n must be a positive safe integer, got ${n}`);
    }
    if (n <= TWO_POW_32) {
      // rejection: accept x < limit, the largest multiple of n <= 2^32
      const limit = TWO_POW_32 - (TWO_POW_32 % n);
      for (;;) {
        const x = this.nextUint32();
        if (x < limit) return x % n;
      }
    }
    const limit = TWO_POW_53 - (TWO_POW_53 % n);
    for (;;) {
      const x = this.uniform() * TWO_POW_53; // an integer in [0, 2^53)
      if (x < limit) return x % n;
    }
  }

  /** Shuffles `array` in place (Fisher-Yates) and returns it. */
  shuffle<T, A extends { length: number; [i: number]: T }>(array: A): A {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = array[i]!;
      array[i] = array[j]!;
      array[j] = tmp;
    }
    return array;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    return this.shuffle(p);
  }

  /** Fills a Float32Array with N(mean, std) values. */
  fillNormal(out: Float32Array, mean = 0, std = 1): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.normal(mean, std);
    return out;
  }

  /** Fills a Float32Array with U[lo, hi) values. */
  fillUniform(out: Float32Array, lo = 0, hi = 1): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.uniformRange(lo, hi);
    return out;
  }

  /**
   * An independent generator derived from this generator's key and `label`.
   * Does not advance this generator; does not depend on its position.
   */
  fork(label: string | number): Rng {
    const child = Object.create(Rng.prototype) as Rng;
    const mixed = splitmix64(this.key ^ hashString(`fork:${String(label)}`))[1];
    child.key = mixed;
    child.reseedFromKey();
    return child;
  }

  /** A JSON-serializable snapshot; `setState` restores it exactly. */
  state(): RngState {
    return {
      algo: "xoshiro128**",
      s: [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0],
      key: this.key.toString(16).padStart(16, "0"),
      spare: this.spare,
    };
  }

  setState(st: RngState): void {
    if (st.algo !== "xoshiro128**" || !Array.isArray(st.s) || st.s.length !== 4) {
      throw new TypeError(`Rng.setState: not an xoshiro128** state: ${JSON.stringify(st)}`);
    }
    for (const w of st.s) {
      if (!Number.isInteger(w) || w < 0 || w >= TWO_POW_32) {
        throw new TypeError(`Rng.setState: state words must be uint32, got ${w}`);
      }
    }
    if ((st.s[0] | st.s[1] | st.s[2] | st.s[3]) === 0) {
      throw new TypeError("Rng.setState: the all-zero state is invalid for xoshiro128**");
    }
    if (!/^[0-9a-f]{16}$/.test(st.key)) throw new TypeError(`Rng.setState: bad key ${st.key}`);
    if (st.spare !== null && typeof st.spare !== "number") {
      throw new TypeError("Rng.setState: spare must be a number or null");
    }
    this.s0 = st.s[0] | 0;
    this.s1 = st.s[1] | 0;
    this.s2 = st.s[2] | 0;
    this.s3 = st.s[3] | 0;
    this.key = BigInt(`0x${st.key}`);
    this.spare = st.spare;
  }

  /** Restores a generator from a snapshot. */
  static fromState(st: RngState): Rng {
    const r = new Rng(0);
    r.setState(st);
    return r;
  }

  /** An exact copy (same position, same key). */
  clone(): Rng {
    return Rng.fromState(this.state());
  }
}

/** Convenience: `new Rng(seed)`. */
export function createRng(seed: Seed = 0): Rng {
  return new Rng(seed);
}
