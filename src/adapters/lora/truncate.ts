// A LoRA of rank r read at rank b ≤ r: only its first b components (A's first b
// rows, B's first b columns), at the same scale α/r — what DyLoRA's evaluation
// at rank b is compared with (`lorakit eval --rank b`, `lorakit compare --eval-ranks`).
import type { AdapterSet } from '../inject.ts';
import { loraKeys } from './peft.ts';

/** Zeroes every component from b on, in place, in every module of a LoRA set. */
export function truncateLoraRank(set: AdapterSet, b: number): void {
  if (set.method.name !== 'lora') throw new Error(`truncateLoraRank: the adapter is '${set.method.name}', not lora`);
  for (const site of set.targets) {
    const r = (set.configFor(site) as { r: number }).r;
    if (!(Number.isInteger(b) && b >= 1 && b <= r)) throw new Error(`--rank ${b}: module '${site.name}' has rank ${r}; give an integer in [1, ${r}]`);
    const k = loraKeys(site), p = set.siteParams(site);
    const A = p[k.A], B = p[k.B], n = A.length / r, m = B.length / r;
    A.fill(0, b * n);
    for (let i = 0; i < m; i++) B.fill(0, i * r + b, (i + 1) * r);
  }
}
