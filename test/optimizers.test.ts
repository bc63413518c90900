// GaLore, LoRA-Pro, ALLoRA and SGD against float64 PyTorch transcriptions of
// the official rules (tools/reference/optimizers.py → test/fixtures/optimizers.json):
// every step's parameters to 1e-6 relative; GaLore with the reference's own
// projectors injected (across refreshes at steps 0, 2, 4) and its SVD
// projector spanning the same subspace as torch's; LoRA-Pro's first-step
// branch, equivalent gradient, Adam direction, Sylvester solution and
// updates; ALLoRA's factors at θ = 0 and away from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { AdamW } from '../src/optim/adamw.ts';
import { Allora, alloraFactors } from '../src/optim/allora.ts';
import { Galore, randomizedLeftVectors, svdProjector } from '../src/optim/galore.ts';
import { MatMulKernel } from '../src/runtime/matmul.ts';
import { Rng } from '../src/util/rng.ts';
import { LoraPro, type LoraPair } from '../src/optim/lorapro.ts';
import { Sgd } from '../src/optim/sgd.ts';
import { clipFactor, globalGradNorm } from '../src/optim/clip.ts';

const FIX = JSON.parse(fs.readFileSync(new URL('./fixtures/optimizers.json', import.meta.url), 'utf8'));
const f32 = (xs: number[]) => Float32Array.from(xs);

/** max |got − want| / max(|want|, 1e-3 · scale): 1e-6 relative at the scale of the tensor. */
function assertRel(got: ArrayLike<number>, want: number[], tol: number, what: string) {
  assert.equal(got.length, want.length, `${what}: length`);
  const scale = Math.max(...want.map(Math.abs), 1e-12);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / scale);
  assert.ok(worst < tol, `${what}: max relative difference ${worst}`);
}

test('GaLore: Adam on projected gradients equals the official step over 5 steps (m ≥ n and m < n, refreshes at 0, 2, 4, moments kept), with the same projectors', async () => {
  const c = FIX.galore;
  const params = new Map<string, Float32Array>(Object.entries(c.init).map(([k, v]) => [k, f32(v as number[])]));
  let step = 0;
  const opt = new Galore(params, {
    rank: c.rank, updateProjGap: c.gap, scale: c.scale, weightDecay: c.weightDecay,
    targets: new Map([['tall', c.shapes.tall], ['wide', c.shapes.wide]]),
    projector: (_G, m, n, r, side) => {
      const name = m === c.shapes.tall[0] ? 'tall' : 'wide';
      const P = c.steps[step].projectors[name];
      assert.ok(P, `a refresh of '${name}' at step ${step}: the reference refreshed there too`);
      assert.equal(side, name === 'tall' ? 'right' : 'left');
      assert.equal(P.length, side === 'left' ? m * r : r * n);
      return Float64Array.from(P);
    },
  });
  for (; step < c.steps.length; step++) {
    const s = c.steps[step];
    await opt.step(new Map(Object.entries(s.grads).map(([k, v]) => [k, f32(v as number[])])), c.lr);
    for (const k of Object.keys(c.shapes)) assertRel(params.get(k)!, s.params[k], 1e-6, `step ${step} '${k}'`);
  }
  // The refreshes happened exactly where the reference's did (the projector callback asserts it), and no more.
  assert.deepEqual(c.steps.map((s: any) => Object.keys(s.projectors).length > 0), [true, false, true, false, true]);
  // State: projected moments are r-sized ([6,4] → [6,2]; [3,5] → [2,5]), plus the projectors.
  assert.equal(opt.stateBytes(), 4 * (2 * 12 + 8) + 4 * (2 * 10 + 6) + 4 * 2 * 4);
  await opt.release();
});

test('GaLore: the randomized projector of large matrices spans the exact SVD subspace when the spectrum has a gap (left and right)', async () => {
  // A = X·diag(σ)·Yᵀ + noise, rank-8 signal well above the noise: the top-8 subspace is well defined.
  const m = 160, n = 120, r = 8;
  const rng = new Rng('galore-randomized-test');
  const gauss = (len: number) => Float32Array.from({ length: len }, () => rng.normal());
  const X = gauss(m * r), Y = gauss(n * r), noise = gauss(m * n);
  const A = new Float32Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let v = 0.01 * noise[i * n + j];
    for (let c = 0; c < r; c++) v += X[i * r + c] * Y[j * r + c] * (10 - c);
    A[i * n + j] = v;
  }
  const kernel = new MatMulKernel();
  try {
    const U = await randomizedLeftVectors(kernel, A, m, n, r, new Rng('draw'));
    const exact = svdProjector(A, m, n, r, 'left');
    // ‖UUᵀ − EEᵀ‖_F over the m×m projections.
    let diff = 0;
    for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) {
      let a = 0, b = 0;
      for (let c = 0; c < r; c++) { a += U[i * r + c] * U[j * r + c]; b += exact[i * r + c] * exact[j * r + c]; }
      diff += (a - b) ** 2;
    }
    assert.ok(Math.sqrt(diff) < 1e-3, `subspace distance ${Math.sqrt(diff)}`);
    // And through the optimizer: a tall matrix (m ≥ n) gets a 'right' projector Vh[:r] [r, n], the exact one as a subspace.
    const params = new Map([['w', new Float32Array(m * n)]]);
    const g = new Galore(params, { rank: r, updateProjGap: 10, scale: 1, targets: new Map([['w', [m, n]]]) });
    await g.step(new Map([['w', A]]), 0);
    const st = (g.stateDict() as any).state.get('w');
    assert.equal(st.side, 'right');
    const seen: Float32Array = st.ortho;
    const exactR = svdProjector(A, m, n, r, 'right'); // [r, n]
    let d2 = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      let a = 0, b = 0;
      for (let c = 0; c < r; c++) { a += seen[c * n + i] * seen[c * n + j]; b += exactR[c * n + i] * exactR[c * n + j]; }
      d2 += (a - b) ** 2;
    }
    assert.ok(Math.sqrt(d2) < 1e-3, `right projector subspace distance ${Math.sqrt(d2)}`);
    await g.release();
  } finally {
    await kernel.release();
  }
});

test("GaLore: lorakit's SVD projector spans the same subspace as torch's (‖PPᵀ − P′P′ᵀ‖ < 1e-5), left and right", () => {
  const s = FIX.galore.subspace;
  const G = f32(s.G);
  const gram = (P: ArrayLike<number>, rows: number, cols: number, byRows: boolean) => {
    const d = byRows ? cols : rows; // right: Pᵀ P over n; left: P Pᵀ over m
    const out = new Float64Array(d * d);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) {
      let acc = 0;
      if (byRows) for (let k = 0; k < rows; k++) acc += P[k * cols + i] * P[k * cols + j];
      else for (let k = 0; k < cols; k++) acc += P[i * cols + k] * P[j * cols + k];
      out[i * d + j] = acc;
    }
    return out;
  };
  const right = svdProjector(G, s.m, s.n, s.rank, 'right');
  const left = svdProjector(G, s.m, s.n, s.rank, 'left');
  const dr = gram(right, s.rank, s.n, true), tr = gram(s.right, s.rank, s.n, true);
  const dl = gram(left, s.m, s.rank, false), tlf = gram(s.left, s.m, s.rank, false);
  assert.ok(Math.max(...dr.map((x, i) => Math.abs(x - tr[i]))) < 1e-5, 'right projector subspace');
  assert.ok(Math.max(...dl.map((x, i) => Math.abs(x - tlf[i]))) < 1e-5, 'left projector subspace');
});

for (const [name, what] of [
  ['lorapro', 'first step (B = 0 branch) and two more'],
  ['loraproRankOne', 'a rank-one first gradient (BᵀB singular after the B = 0 step: the float32 pinv cut keeps the step bounded)'],
  ['loraproClipped', 'clipping as the official ZeRO step: the norm of the raw gradients, moments of the unclipped g̃, the factor on the adjusted update (steps 1 and 3 clip, step 2 does not)'],
] as const) test(`LoRA-Pro: ${what}: equivalent gradient, full-size Adam direction, adjusted gradients and the SGD update equal the official math`, () => {
  const c = FIX[name];
  const pair: LoraPair = { A: 'A', B: 'B', m: c.m, n: c.n, r: c.r, s: c.s };
  const params = new Map([['A', f32(c.init.A)], ['B', f32(c.init.B)]]);
  const opt = new LoraPro(params, new AdamW(new Map()), { pairs: [pair] });
  // Step by step through `adjusted` (what `step` applies), then the step itself on a copy.
  for (const [i, s] of c.steps.entries()) {
    const mirror = new LoraPro(new Map([['A', params.get('A')!.slice()], ['B', params.get('B')!.slice()]]), new AdamW(new Map()), { pairs: [pair] });
    mirror.loadStateDict(opt.stateDict());
    const got = mirror.adjusted(pair, s.gA, s.gB, i === 0);
    assertRel(got.equivalent, s.equivalent, 1e-6, `step ${i} equivalent gradient`);
    assertRel(got.adamDirection, s.adam, 1e-6, `step ${i} Adam direction`);
    assertRel(got.gradA, s.gradA, 1e-6, `step ${i} grad_A`);
    assertRel(got.gradB, s.gradB, 1e-6, `step ${i} grad_B`);
    if (s.equivalentOfG) {
      // g̃ is the tangent-space projection P_B·G + (I − P_B)·G·P_A of the full gradient the LoRA gradients came from.
      assertRel(got.equivalent, s.equivalentOfG, 1e-6, `step ${i} g̃ = P_B G + (I − P_B) G P_A`);
      // And the update reproduces the projection of the Adam direction: s·(B·grad_A + grad_B·A).
      const A = params.get('A')!, B = params.get('B')!;
      const rebuilt = new Float64Array(c.m * c.n);
      for (let a = 0; a < c.m; a++) for (let b = 0; b < c.n; b++) {
        let acc = 0;
        for (let k = 0; k < c.r; k++) acc += B[a * c.r + k] * got.gradA[k * c.n + b] + got.gradB[a * c.r + k] * A[k * c.n + b];
        rebuilt[a * c.n + b] = c.s * acc;
      }
      assertRel(rebuilt, s.projection, 1e-6, `step ${i} s(B·grad_A + grad_B·A) = projection of g`);
    }
    const grads = new Map([['A', f32(s.gA)], ['B', f32(s.gB)]]);
    let clipScale: number | undefined;
    if ('maxNorm' in c) {
      // The loop's factor, measured on the raw gradients it hands over: equal to the reference's.
      clipScale = clipFactor(globalGradNorm(grads), c.maxNorm);
      assert.ok(Math.abs(clipScale - s.clipScale) <= 1e-6 * s.clipScale, `step ${i} clip factor ${clipScale} vs ${s.clipScale}`);
    }
    opt.step(grads, c.lr, { clipScale });
    assertRel(params.get('A')!, s.A, 1e-6, `step ${i} A`);
    assertRel(params.get('B')!, s.B, 1e-6, `step ${i} B`);
    // The reference's B stays O(1): a float64 cut would keep BᵀB's ~1e-8 eigenvalue and blow the step up by ~1e8.
    assert.ok(Math.max(...params.get('B')!.map(Math.abs)) < 10, `step ${i} B bounded`);
  }
  assert.equal(opt.stateBytes(), 2 * 4 * c.m * c.n, 'full m×n moments per layer');
});

test('ALLoRA: the factor is η at θ = 0 and 1/√(‖θ_i‖² + η⁻²) per row away from it; one scaled AdamW step equals torch', () => {
  const c = FIX.allora;
  const A = f32(c.A), B = f32(c.B);
  assertRel(alloraFactors(A, 5, c.eta, 'row'), c.factorsA, 1e-6, 'factors of A');
  const fB = alloraFactors(B, 3, c.eta, 'row');
  assert.deepEqual([...fB], [c.eta, c.eta, c.eta, c.eta], 'B = 0: every row gets η');
  const params = new Map([['A', A], ['B', B]]);
  const opt = new Allora(params, new AdamW(params, { lr: c.lr, weightDecay: c.weightDecay }), { eta: c.eta, rows: new Map([['A', 5], ['B', 3]]) });
  opt.step(new Map([['A', f32(c.gA)], ['B', f32(c.gB)]]), c.lr);
  assertRel(A, c.afterA, 1e-6, 'A after the step');
  assertRel(B, c.afterB, 1e-6, 'B after the step');
});

test('SGD: momentum, dampening and weight decay as torch.optim.SGD over 3 steps; the state round-trips', () => {
  const c = FIX.sgd;
  const p = f32(c.init);
  const params = new Map([['p', p]]);
  const opt = new Sgd(params, { momentum: c.momentum, dampening: c.dampening, weightDecay: c.weightDecay });
  for (const [i, s] of c.steps.entries()) {
    if (i === 2) {
      const again = new Sgd(params, { momentum: c.momentum, dampening: c.dampening, weightDecay: c.weightDecay });
      again.loadStateDict(opt.stateDict());
      again.step(new Map([['p', f32(s.grad)]]), c.lr);
    } else opt.step(new Map([['p', f32(s.grad)]]), c.lr);
    assertRel(p, s.param, 1e-6, `step ${i}`);
  }
  assert.throws(() => opt.loadStateDict({ kind: 'adamw' } as any), /saved optimizer state is 'adamw', this run uses 'sgd'/);
});
