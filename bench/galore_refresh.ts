// The cost of one GaLore projector refresh (the top-r singular vectors of a
// gradient), at the bench model's matrix sizes: lorakit's exact float64 SVD in
// JavaScript vs the randomized range finder with its products on ONNX Runtime
// (what Galore uses for min(m, n) > 96). Quality: the fraction of the gradient's
// top-r energy the projector captures, ‖PᵀG‖² / ‖EᵀG‖² (E: the exact vectors),
// on a matrix with a decaying spectrum (σ_i ∝ 1/i, plus noise), like gradients.
//
//   npx tsx bench/galore_refresh.ts [--rank 128] [--sizes 768x768,768x2048] [--exact true]
//   npx tsx bench/galore_refresh.ts --smoke   (rank 8 on 128×160: seconds; the test suite runs it)
import { randomizedLeftVectors, svdProjector } from '../src/optim/galore.ts';
import { MatMulKernel } from '../src/runtime/matmul.ts';
import { Rng } from '../src/util/rng.ts';

const smoke = process.argv.includes('--smoke');
const arg = (k: string, d: string) => {
  const i = process.argv.indexOf(k);
  return i > 0 ? process.argv[i + 1] : smoke && k === '--rank' ? '8' : smoke && k === '--sizes' ? '128x160' : d;
};
const rank = Number(arg('--rank', '128'));
const sizes = arg('--sizes', '768x768,768x2048').split(',').map((s) => s.split('x').map(Number) as [number, number]);
const exactToo = arg('--exact', 'true') === 'true';

/** G [m, n] = Σ_i (1/i) x_i y_iᵀ over 4r random directions, plus small noise. */
function gradientLike(m: number, n: number, rng: Rng): Float32Array {
  const k = Math.min(m, n, 4 * rank);
  const G = new Float32Array(m * n);
  for (let i = 0; i < G.length; i++) G[i] = 1e-3 * rng.normal();
  const x = new Float32Array(m), y = new Float32Array(n);
  for (let c = 0; c < k; c++) {
    for (let i = 0; i < m; i++) x[i] = rng.normal() / Math.sqrt(m);
    for (let j = 0; j < n; j++) y[j] = rng.normal() / Math.sqrt(n);
    const s = 1 / (c + 1);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) G[i * n + j] += s * x[i] * y[j];
  }
  return G;
}

/** ‖PᵀG‖_F² for P [m, r]. */
function captured(P: Float64Array, G: Float32Array, m: number, n: number, r: number): number {
  let e = 0;
  const row = new Float64Array(n);
  for (let c = 0; c < r; c++) {
    row.fill(0);
    for (let i = 0; i < m; i++) {
      const p = P[i * r + c];
      for (let j = 0; j < n; j++) row[j] += p * G[i * n + j];
    }
    for (let j = 0; j < n; j++) e += row[j] ** 2;
  }
  return e;
}

const kernel = new MatMulKernel();
console.log(`GaLore projector refresh, rank ${rank} (left vectors of G [m, n]; 'right' refreshes are the same on Gᵀ)`);
console.log('| G | randomized on ORT s | exact SVD in JS s | ratio | energy captured (randomized / exact) |\n|---|---|---|---|---|');
for (const [m, n] of sizes) {
  const G = gradientLike(m, n, new Rng(`galore-refresh|${m}x${n}`));
  await randomizedLeftVectors(kernel, G, m, n, rank, new Rng('warm')); // compiles the Gemm graphs
  let t = performance.now();
  const R = await randomizedLeftVectors(kernel, G, m, n, rank, new Rng('draw'));
  const tRand = (performance.now() - t) / 1000;
  let tExact = NaN, quality = NaN;
  if (exactToo) {
    t = performance.now();
    const E = svdProjector(G, m, n, rank, 'left');
    tExact = (performance.now() - t) / 1000;
    quality = captured(R, G, m, n, rank) / captured(E, G, m, n, rank);
  }
  console.log(`| ${m}×${n} | ${tRand.toFixed(2)} | ${tExact.toFixed(2)} | ${(tExact / tRand).toFixed(1)}× | ${quality.toFixed(5)} |`);
}
await kernel.release();
