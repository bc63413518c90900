// Seeded random supports (which entries of a weight-shaped matrix a method
// owns): SLTrain's sparse support. (FourierFT's locations are torch.randperm's,
// as PEFT draws them: src/util/torch_rng.ts.)
//
// The generator is deliberately tiny (mulberry32 + FNV-1a for string seeds +
// a partial Fisher–Yates) so that tools/reference/reparam_b.py reproduces it
// bit for bit; supports are regenerated from the config's seed, never stored.

/** FNV-1a 32-bit hash of a string (UTF-16 code units below 256 as bytes, others by their low byte). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i) & 0xff;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** mulberry32: uniform floats in [0, 1) from a 32-bit seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a) >>> 0;
    t = ((t + Math.imul(t ^ (t >>> 7), 61 | t)) >>> 0) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` distinct flat indices in [0, total), sorted ascending: the first
 * `count` positions of a Fisher–Yates shuffle driven by mulberry32(seed).
 */
export function randomSupport(total: number, count: number, seed: number): Int32Array {
  if (!(count >= 1 && count <= total)) throw new Error(`randomSupport: need 1 <= count (${count}) <= total (${total})`);
  const next = mulberry32(seed);
  const perm = new Int32Array(total);
  for (let i = 0; i < total; i++) perm[i] = i;
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(next() * (total - i));
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  return perm.slice(0, count).sort();
}

/** A 32-bit seed from a numeric seed and a label (site name, method). */
export function mixSeed(seed: number, label: string): number {
  return (fnv1a(label) ^ Math.imul(seed >>> 0, 0x9e3779b1)) >>> 0;
}
