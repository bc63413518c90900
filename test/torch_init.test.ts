// src/util/torch_init.ts against torch itself (tools/reference/torch_init.py →
// test/fixtures/torch_init.json, one section per torch: 'legacy' = 1.13,
// 'current' = 2.13): seeded tensor.uniform_ for float32 and bfloat16, drawn
// one tensor after another from one generator, and bfloat16 std — bit for bit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { TorchGenerator } from '../src/util/torch_rng.ts';
import { veraConfigSchema, veraProjections } from '../src/adapters/vera/index.ts';
import { randloraConfigSchema, randloraShared } from '../src/adapters/randlora/index.ts';
import { bf16, fmaF32, kaimingUniformBound, stdBf16, torchUniform, type InitDtype } from '../src/util/torch_init.ts';

const FIX = JSON.parse(fs.readFileSync(new URL('./fixtures/torch_init.json', import.meta.url), 'utf8'));
const ALGORITHMS = ['legacy', 'current'] as const;

interface Sample { head?: number[]; every: number; values: number[]; sum: number; count: number }

/** Asserts `got` matches a fixture sample exactly (sampled values) and its float64 sum to rounding. */
function assertSample(got: Float32Array, s: Sample, what: string) {
  assert.equal(got.length, s.count, `${what}: count`);
  if (s.head) assert.deepEqual(Array.from(got.subarray(0, s.head.length)), s.head, `${what}: first values`);
  const picked: number[] = [];
  for (let i = 0; i < got.length; i += s.every) picked.push(got[i]);
  assert.deepEqual(picked, s.values, `${what}: every ${s.every}th value`);
  let sum = 0;
  for (const v of got) sum += v;
  assert.ok(Math.abs(sum - s.sum) <= 1e-9 * Math.max(1, Math.abs(s.sum)), `${what}: sum ${sum} vs torch ${s.sum}`);
}

for (const alg of ALGORITHMS) {
  test(`uniform_ (${alg}, torch ${FIX[alg].torch}): float32 and bfloat16, consecutive draws, bit for bit`, () => {
    for (const c of FIX[alg].uniform) {
      const g = new TorchGenerator(BigInt(c.seed));
      c.shapes.forEach((shape: number[], k: number) => {
        const n = shape.reduce((p, d) => p * d, 1);
        const got = torchUniform(g, n, c.lo, c.hi, { dtype: c.dtype as InitDtype, algorithm: alg });
        assertSample(got, c.draws[k], `seed ${c.seed} ${c.dtype} [${shape}] U(${c.lo}, ${c.hi}) draw ${k}`);
      });
    }
  });

  test(`bfloat16 std (${alg} inputs) equals torch's x.std()`, () => {
    for (const c of FIX[alg].std_bf16) assert.equal(stdBf16(Float32Array.from(c.x)), c.std);
  });
}

test('the two algorithms differ where torch changed (bfloat16 bits, values rounding to `to`); float32 agrees elsewhere', () => {
  const a = torchUniform(new TorchGenerator(3), 4096, 1, 1 + 2 ** -18, { algorithm: 'legacy' });
  const b = torchUniform(new TorchGenerator(3), 4096, 1, 1 + 2 ** -18, { algorithm: 'current' });
  const top = Math.fround(1 + 2 ** -18);
  assert.ok(a.some((v) => v === top) && !b.some((v) => v === top));
  const c = torchUniform(new TorchGenerator(0), 1000, -0.6, 0.6, { algorithm: 'legacy' });
  assert.deepEqual(c, torchUniform(new TorchGenerator(0), 1000, -0.6, 0.6, { algorithm: 'current' }));
});

test('bf16 rounds to nearest even; kaiming bound matches torch.nn.init (a = √5: 1/√fan_in)', () => {
  assert.equal(bf16(1 + 2 ** -8), 1); // tie → even
  assert.equal(bf16(1 + 3 * 2 ** -8), 1 + 2 ** -6); // tie → even (up)
  assert.equal(bf16(1 + 2 ** -8 + 2 ** -20), 1 + 2 ** -7);
  assert.ok(Math.abs(kaimingUniformBound(768, Math.sqrt(5)) - 1 / Math.sqrt(768)) < 1e-15);
  assert.equal(kaimingUniformBound(16), Math.sqrt(3) * (Math.sqrt(2) / Math.sqrt(16)));
});

test("PEFT's shared projections from projection_prng_key: VeRA (float32) and RandLoRA (bfloat16, std-normalised) equal torch 2.13's, sizes up to 3072", () => {
  for (const alg of ALGORITHMS) {
    for (const c of FIX[alg].vera) {
      const { A, B } = veraProjections(veraConfigSchema.parse({ r: c.r, projection_prng_key: c.seed }), { out: c.out, in: c.in });
      assertSample(A, c.A, `vera r ${c.r} [${c.out}, ${c.in}] seed ${c.seed} A (torch ${FIX[alg].torch})`);
      assertSample(B, c.B, `vera r ${c.r} [${c.out}, ${c.in}] seed ${c.seed} B (torch ${FIX[alg].torch})`);
    }
  }
  // RandLoRA needs torch 2 in PEFT (kaiming_uniform_ with a generator): torch 2's bfloat16 draws.
  for (const c of FIX.current.randlora) {
    const s = randloraShared(randloraConfigSchema.parse({ r: c.r, projection_prng_key: c.seed }), { out: c.out, in: c.in });
    assertSample(s.A, c.A, `randlora r ${c.r} [${c.out}, ${c.in}] A`);
    assertSample(s.B, c.B, `randlora r ${c.r} [${c.out}, ${c.in}] B`);
  }
});

test('fmaF32 rounds a·b + c once, also where the double sum lands exactly halfway between two floats', () => {
  const a = 1 + 2 ** -12; // a·a = 1 + 2^-11 + 2^-24: halfway between 1 + 2^-11 and the next float
  assert.equal(fmaF32(a, a, 2 ** -60), 1 + 2 ** -11 + 2 ** -23); // just above halfway: up (the double sum alone ties to even: down)
  assert.equal(fmaF32(a, a, -(2 ** -60)), 1 + 2 ** -11);
  assert.equal(fmaF32(a, a, 0), 1 + 2 ** -11); // exact tie: to even
  assert.equal(fmaF32(3, 0.5, 0.25), 1.75);
});
