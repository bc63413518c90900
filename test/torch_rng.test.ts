// src/util/torch_rng.ts against torch itself: torch.randperm(n,
// generator=torch.Generator().manual_seed(seed)) on CPU, as written by
// tools/reference/torch_randperm.py (test/fixtures/torch_randperm.json; small
// n from any torch, the large-n switch from torch 1.13 = 'legacy' and torch
// 2.13 = 'current'). FourierFT's locations are PEFT's through this generator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { RANDPERM_INSIDE_OUT_FROM, TorchGenerator, torchRandperm } from '../src/util/torch_rng.ts';
import { fourierftIndices } from '../src/adapters/fourierft/index.ts';
import { fourierft } from '../src/adapters/fourierft/index.ts';

const FIX = JSON.parse(fs.readFileSync(new URL('./fixtures/torch_randperm.json', import.meta.url), 'utf8'));

test('MT19937 engine: std::mt19937 reference outputs (seed 5489: 10000th draw 4123659995)', () => {
  // The C++ standard fixes mt19937's 10000th output for the default seed 5489 ([rand.predef]).
  const g = new TorchGenerator(5489);
  let v = 0;
  for (let i = 0; i < 10000; i++) v = g.random();
  assert.equal(v, 4123659995);
  // Seeds use their low 32 bits only (torch's init_with_uint32).
  const a = new TorchGenerator(2n ** 32n + 7n), b = new TorchGenerator(7);
  for (let i = 0; i < 5; i++) assert.equal(a.random(), b.random());
  assert.throws(() => new TorchGenerator(-1), /seed must be an integer in \[0, 2\^64\)/);
});

test('random64() % m equals the 64-bit computation (BigInt), across the fast-path boundaries', () => {
  const g = new TorchGenerator(3), h = new TorchGenerator(3);
  for (const m of [1, 2, 3, 997, 2 ** 20 - 1, 2 ** 20, 2 ** 20 + 1, 2 ** 21 + 5, 214748364, 2 ** 32 + 15, 2 ** 36 - 5, 2 ** 36]) {
    for (let i = 0; i < 200; i++) {
      const got = g.random64Mod(m);
      const hi = BigInt(h.random()), lo = BigInt(h.random());
      assert.equal(got, Number(((hi << 32n) | lo) % BigInt(m)), `m = ${m}`);
    }
  }
});

test('torchRandperm equals torch.randperm for n up to 768·3072, seeds incl. PEFT\'s 777 and ≥ 2^32', () => {
  for (const c of FIX.small) {
    const seed = BigInt(c.seed);
    const prefix = torchRandperm(c.n, seed, { count: c.count });
    assert.deepEqual(Array.from(prefix), c.prefix, `n=${c.n} seed=${c.seed}: first ${c.count}`);
    const full = torchRandperm(c.n, seed);
    const sample: number[] = [];
    for (let i = 0; i < c.n; i += c.stride) sample.push(full[i]);
    assert.deepEqual(sample, c.sample, `n=${c.n} seed=${c.seed}: every ${c.stride}th of the whole permutation`);
  }
});

test('torchRandperm at the large-n switch: legacy = torch 1.13, current = torch 2.13 (inside-out with random64)', () => {
  assert.equal(RANDPERM_INSIDE_OUT_FROM, FIX.switch);
  const algos = new Set(FIX.large.map((c: { algorithm: string }) => c.algorithm));
  assert.deepEqual([...algos].sort(), ['current', 'legacy'], 'the fixture has both torch behaviours');
  for (const c of FIX.large) {
    const p = torchRandperm(c.n, BigInt(c.seed), { count: 1000, algorithm: c.algorithm });
    assert.deepEqual(Array.from(p.slice(0, 64)), c.prefix, `${c.algorithm} (torch ${c.torch}) n=${c.n}`);
    assert.equal(p.reduce((s, v) => s + v, 0), c.sum1000, `${c.algorithm} n=${c.n}: sum of the first 1000`);
  }
});

test('FourierFT locations are PEFT\'s: randperm(out·in, seed)[:n_frequency] → (idx // in, idx % in), in that order', () => {
  const c = FIX.small.find((s: { n: number; seed: string }) => s.n === 768 * 3072 && s.seed === '777');
  // A [3072, 768] layer (out = 3072, in = 768) and a [768, 3072] one share out·in but not rows/cols.
  for (const [out, inF] of [[3072, 768], [768, 3072]]) {
    const { u, v } = fourierftIndices(out, inF, fourierft.schema.parse({ n_frequency: 1000 }));
    assert.deepEqual(Array.from(u), c.prefix.map((f: number) => Math.floor(f / inF)));
    assert.deepEqual(Array.from(v), c.prefix.map((f: number) => f % inF));
  }
  assert.throws(() => fourierftIndices(4, 5, { n_frequency: 21, random_loc_seed: 777 }), /n_frequency \(21\) must be at most out·in \(4·5 = 20\)/);
  // PEFT allows n_frequency = out·in: every location once (torch.randperm's full permutation).
  const all = fourierftIndices(4, 5, { n_frequency: 20, random_loc_seed: 777 });
  assert.equal(new Set(Array.from(all.u, (u, k) => u * 5 + all.v[k])).size, 20);
  assert.throws(() => torchRandperm(10, 1, { count: 11 }), /count must be an integer in \[0, n=10\]/);
});
