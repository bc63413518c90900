// LoRA-Pro's claim, measured two ways on the same model, head and batches
// (no weight decay, constant lr), for plain LoRA (r 8, α 16) and LoRA-Pro:
//
// cumulative: three separate runs (full fine-tuning, LoRA, LoRA-Pro); after
//   each step, per adapted module, ‖ΔW_method − ΔW_full‖_F / ‖ΔW_full‖_F and
//   the cosine, ΔW = W_t − W_0 (LoRA: s·B·A), averaged over the modules.
// per-step (the paper's measure): at each step of a LoRA / LoRA-Pro run, the
//   update the method makes to W = W0 + s·B·A against the update full
//   fine-tuning would make from that same W on the same batch: SGD −lr·g (g =
//   ∂L/∂W from the full-fine-tuning graph at that W, the run's own head), AdamW
//   −lr·m̂/(√v̂ + ε) with full-size moments of those g accumulated along the
//   method's own trajectory; and the gradient distance ‖g̃ − g‖/‖g‖, g̃ the
//   method's equivalent gradient (LoRA: s(B·g_A + g_B·A); LoRA-Pro: its
//   adjusted one, the projection of g onto {B·X + Y·A}).
//
//   npx tsx bench/lorapro_claim.ts [--model use|DIR] [--regime adamw|sgd] [--steps 8] [--lr 1e-4] [--targets qkv,conv1]
//        [--measure cumulative,per-step] [--dump FILE --dump-steps 3] [--lorapro-shift 1e-8] [--max-grad-norm 1]
// --max-grad-norm clips every run as the official scripts do (transformers' default 1.0; off by default here):
// full fine-tuning and LoRA before AdamW, LoRA-Pro's adjusted update after its Adam (the official ZeRO order).
//   npx tsx bench/lorapro_claim.ts --smoke   (the BERT fixture, 2 steps of batch 2, both measures: seconds; the test suite runs it)
// --dump writes the first adapted module's A, B, g, g_A, g_B, lorakit's g̃ and the
// step's result for the first steps of the LoRA-Pro run (safetensors, float64),
// for tools/reference/lorapro_real_layers.py.
import { AdapterSet } from '../src/adapters/inject.ts';
import { getMethod } from '../src/adapters/registry.ts';
import { toOutIn } from '../src/adapters/inject.ts';
import { loadModel } from '../src/models/load.ts';
import type { EncoderModel, LinearSite, WeightMap } from '../src/models/types.ts';
import { Trainer } from '../src/train/loop.ts';
import { loraPairs, type OptimizerSpec } from '../src/train/optimizers.ts';
import { cosine } from '../src/workflows/sg_lora/similarity.ts';
import { AdamW } from '../src/optim/adamw.ts';
import { clipFactor, globalGradNorm } from '../src/optim/clip.ts';
import { equivalentGradient, loraproEquivalent, type LoraPair } from '../src/optim/lorapro.ts';
import { writeSafetensors, type TensorInput } from '../src/io/safetensors.ts';
import { matmulF64, svdJacobi, transposeF64 } from '../src/linalg/svd.ts';
import { ClassificationTask, type EncodedExample } from '../src/train/tasks/classification.ts';

export interface ClaimOptions {
  steps: number; lr: number; r: number; alpha: number; batchSize: number; seed: number; targets: string[] | 'all-linear';
  /** 'adamw': full AdamW vs LoRA with AdamW vs LoRA-Pro (official, Adam moments); 'sgd': the same with SGD and LoRA-Pro's SGD form. */
  regime: 'adamw' | 'sgd';
  /** LoRA-Pro's δ in pinv(M + δ·I) (default the official 1e-8). */
  shift?: number;
  /**
   * Gradient clipping for every run (undefined: off). The official scripts run with transformers' default
   * max_grad_norm 1.0: full fine-tuning and LoRA clip before AdamW, LoRA-Pro's ZeRO step scales its adjusted
   * update by the factor (the norm taken on the raw LoRA gradients).
   */
  maxGradNorm?: number;
}

/** Mean relative distance to full fine-tuning's ΔW after each step, for plain LoRA and LoRA-Pro. */
export interface StepDistance {
  step: number;
  /** Mean ‖ΔW_method − ΔW_full‖_F / ‖ΔW_full‖_F over the modules. */
  lora: number;
  lorapro: number;
  /** Mean cosine between ΔW_method and ΔW_full (direction only). */
  loraCos: number;
  loraproCos: number;
}

/** ‖a − b‖ / ‖b‖. */
const rel = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
};
const norm = (a: ArrayLike<number>) => {
  let x = 0;
  for (let i = 0; i < a.length; i++) x += a[i] * a[i];
  return Math.sqrt(x);
};
const cloneWeights = (w: WeightMap): WeightMap => new Map([...w].map(([k, v]) => [k, { shape: v.shape, data: Float32Array.from(v.data) }]));
/** What every run shares: one epoch over the claim's examples, constant lr, no weight decay. */
const fitOptions = (o: ClaimOptions) => ({ epochs: 1, lr: o.lr, batchSize: o.batchSize, seed: o.seed, weightDecay: 0, warmupRatio: 0, schedule: 'constant' as const, threads: 2, maxGradNorm: o.maxGradNorm });
/** A fresh LoRA on the claim's targets: the same seed, so every run starts from the same A (B = 0). */
const loraSet = (model: EncoderModel, o: ClaimOptions) => {
  const lora = getMethod('lora');
  return new AdapterSet(lora, lora.schema.parse({ r: o.r, lora_alpha: o.alpha }), model.sites, model.weights, { targetModules: o.targets, seed: o.seed });
};
/** LoRA-Pro in the regime's form (AdamW: the official full-size moments; SGD: the paper's g = g̃), or the plain rule. */
const optimizerFor = (o: ClaimOptions, pro: boolean): OptimizerSpec => (pro ? { kind: 'lorapro', moments: o.regime === 'adamw' ? 'adam' : 'none', shift: o.shift } : { kind: o.regime });

export async function updateDistances(model: EncoderModel, data: EncodedExample[], o: ClaimOptions): Promise<StepDistance[]> {
  const fit = fitOptions(o);
  const train = data.slice(0, o.steps * o.batchSize);
  const sites: LinearSite[] = loraSet(model, o).targets;

  // Full fine-tuning: ΔW of the target modules after each step.
  const fullModel = model.withWeights(cloneWeights(model.weights));
  const full: Map<string, Float32Array>[] = [];
  const w0 = new Map(sites.map((s) => [s.name, toOutIn(s, Float32Array.from(model.weights.get(s.weightKey)!.data))]));
  const tf = new Trainer(new ClassificationTask(fullModel, { numLabels: 2, seed: o.seed }), null, {
    ...fit, full: { weights: fullModel.weights }, optimizer: { kind: o.regime },
    onStep: () => full.push(new Map(sites.map((s) => [s.name, toOutIn(s, fullModel.weights.get(s.weightKey)!.data).map((x, i) => x - w0.get(s.name)![i])]))),
  });
  await tf.fit({ train });
  await tf.release();

  const adapterRun = async (pro: boolean) => {
    const set = loraSet(model, o);
    const deltas: Map<string, Float32Array>[] = [];
    const t = new Trainer(new ClassificationTask(model, { numLabels: 2, seed: o.seed }), set, {
      ...fit, optimizer: optimizerFor(o, pro),
      onStep: () => deltas.push(new Map(sites.map((s) => [s.name, set.deltaFor(s, model.weights.get(s.weightKey)!.data)]))),
    });
    await t.fit({ train });
    await t.release();
    return deltas;
  };
  const [plain, pro] = [await adapterRun(false), await adapterRun(true)];
  const mean = (f: (site: LinearSite) => number) => sites.reduce((s, site) => s + f(site), 0) / sites.length;
  return full.map((f, k) => ({
    step: k + 1,
    lora: mean((site) => rel(plain[k].get(site.name)!, f.get(site.name)!)),
    lorapro: mean((site) => rel(pro[k].get(site.name)!, f.get(site.name)!)),
    loraCos: mean((site) => cosine(plain[k].get(site.name)!, f.get(site.name)!)),
    loraproCos: mean((site) => cosine(pro[k].get(site.name)!, f.get(site.name)!)),
  }));
}

/**
 * Orthonormal basis [rows, q] of M's column space (M [rows, cols], cols ≤ rows): the directions whose singular
 * value is above √(cols·ε32) of the largest — the rank float32's pinv sees in MᵀM (LoRA-Pro's own cut), so a B
 * of rank 2 stored in float32 does not lend its rounding-noise directions to the tangent space.
 */
function columnBasis(M: Float64Array, rows: number, cols: number): { Q: Float64Array; q: number } {
  const { U, S, k } = svdJacobi(M, rows, cols);
  const top = Math.max(0, ...S);
  const keep = [...S.keys()].filter((i) => top > 0 && S[i] > Math.sqrt(cols * 1.1920928955078125e-7) * top);
  const Q = new Float64Array(rows * keep.length);
  for (let i = 0; i < rows; i++) keep.forEach((c, j) => (Q[i * keep.length + j] = U[i * k + c]));
  return { Q, q: keep.length };
}

/** M ↦ P_B·M + (I − P_B)·M·P_A, the orthogonal projection onto {B·X + Y·A} (projectors from orthonormal bases, no 1e-8 shift). */
function tangentProjector(A: Float64Array, B: Float64Array, p: LoraPair): (M: Float64Array) => Float64Array {
  const b = columnBasis(B, p.m, p.r), a = columnBasis(transposeF64(A, p.r, p.n), p.n, p.r);
  return (M) => {
    const PBM = matmulF64(b.Q, matmulF64(transposeF64(b.Q, p.m, b.q), M, b.q, p.m, p.n), p.m, b.q, p.n);
    const R = M.map((x, i) => x - PBM[i]);
    const RPA = matmulF64(matmulF64(R, a.Q, p.m, p.n, a.q), transposeF64(a.Q, p.n, a.q), p.m, a.q, p.n);
    return PBM.map((x, i) => x + RPA[i]);
  };
}

/** One method's figures at one step, averaged over the adapted modules. */
export interface PerStepFigures {
  /** ‖Δ_method − Δ_full‖_F / ‖Δ_full‖_F, both updates taken from the same W on the same batch. */
  update: number;
  /** cos(Δ_method, Δ_full). */
  cos: number;
  /** ρ = ‖Δ_method‖_F / ‖Δ_full‖_F: the update distance is √(1 + ρ² − 2ρ·cos). */
  ratio: number;
  /** ‖g̃ − g‖_F / ‖g‖_F: the method's equivalent gradient against the full gradient at that W. */
  grad: number;
  /** ‖Δ₁ − Δ_full‖ / ‖Δ_full‖ for the first-order part Δ₁ = s(B·ΔA + ΔB·A) of the update. */
  firstOrder: number;
  /** ‖s·ΔB·ΔA‖ / ‖Δ_method‖: the second-order part the equivalent-gradient view leaves out. */
  secondShare: number;
  /** ‖T(Δ_full) − Δ_full‖ / ‖Δ_full‖, T the orthogonal projection onto the tangent space {B·X + Y·A} at that point: the least first-order distance any LoRA update can have there. */
  floor: number;
  /** ‖T(g) − g‖ / ‖g‖: the least gradient distance at that point (what LoRA-Pro's g̃ reaches when its 1e-8 shift is negligible). */
  gradFloor: number;
  /** ‖ρ⁻¹·Δ_method − Δ_full‖ / ‖Δ_full‖ = √(2 − 2·cos): the distance at matched norm. */
  matched: number;
}
export interface PerStepRow { step: number; lora: PerStepFigures; lorapro: PerStepFigures }
export interface DumpOptions { file: string; steps: number }

/** The per-step measure (see the head of this file) for plain LoRA and LoRA-Pro; `dump` records the LoRA-Pro run's first module. */
export async function perStepDistances(model: EncoderModel, data: EncodedExample[], o: ClaimOptions, dump?: DumpOptions): Promise<PerStepRow[]> {
  const plain = await perStepRun(model, data, o, false);
  const pro = await perStepRun(model, data, o, true, dump);
  return plain.map((l, k) => ({ step: k + 1, lora: l, lorapro: pro[k] }));
}

async function perStepRun(model: EncoderModel, data: EncodedExample[], o: ClaimOptions, pro: boolean, dump?: DumpOptions): Promise<PerStepFigures[]> {
  const fit = fitOptions(o);
  const train = data.slice(0, o.steps * o.batchSize);
  const set = loraSet(model, o);
  const sites = set.targets;
  const pairs = new Map<string, LoraPair>(loraPairs(set).map((p, i) => [sites[i].name, p]));
  // Full fine-tuning's side: a copy of the model whose adapted weights are set to W0 + s·B·A (and whose head
  // to the run's head) before each step, so its gradient is ∂L/∂W at the point the method stands on.
  const refModel = model.withWeights(cloneWeights(model.weights));
  const refTask = new ClassificationTask(refModel, { numLabels: 2, seed: o.seed });
  const ref = new Trainer(refTask, null, { ...fit, full: { weights: refModel.weights } });
  // Full AdamW's moments of those gradients, accumulated along the method's trajectory; its parameters are a
  // scratch copy zeroed before each step (no weight decay), so after the step they hold the update.
  const scratch = new Map(sites.map((s) => [s.name, new Float32Array(s.outFeatures * s.inFeatures)]));
  const refAdam = new AdamW(scratch, { weightDecay: 0 });
  const task = new ClassificationTask(model, { numLabels: 2, seed: o.seed });
  const deltas = () => new Map(sites.map((s) => [s.name, set.deltaFor(s, model.weights.get(s.weightKey)!.data)]));
  const rows: PerStepFigures[] = [];
  const dumped: Record<string, TensorInput> = {};
  let at: { step: number; before: Map<string, Float32Array>; full: Map<string, Float32Array>; grad: Map<string, number>; gradFloor: Map<string, number>; factors: Map<string, { A: Float64Array; B: Float64Array }>; record?: Record<string, Float64Array> } | null = null;
  const t = new Trainer(task, set, {
    ...fit, optimizer: optimizerFor(o, pro),
    beforeStep: async ({ step, batch, lr, grads: seen, params, clipScale, gradsClipped }) => {
      // The gradient distance compares unclipped gradients on both sides; the updates carry each side's clipping.
      const grads = gradsClipped && clipScale !== 1 ? new Map([...seen].map(([k, v]) => [k, v.map((x) => x / clipScale)])) : seen;
      const merged = set.mergeInto(model.weights);
      for (const s of sites) refModel.weights.get(s.weightKey)!.data.set(merged.get(s.weightKey)!.data);
      for (const [k, p] of task.params) refTask.params.get(k)!.data.set(p.data);
      const fullGrads = (await ref.gradients(batch)).grads;
      const g = new Map(sites.map((s) => [s.name, Float32Array.from(toOutIn(s, fullGrads.get(s.weightKey)!))]));
      // Full fine-tuning clips by the norm of all its gradients (every weight and the head), before its optimizer.
      const fullClip = o.maxGradNorm ? clipFactor(globalGradNorm(fullGrads), o.maxGradNorm) : 1;
      const full = new Map<string, Float32Array>();
      if (o.regime === 'adamw') {
        for (const x of scratch.values()) x.fill(0);
        await refAdam.step(new Map([...g].map(([k, v]) => [k, fullClip === 1 ? v : v.map((x) => x * fullClip)])), lr);
        for (const s of sites) full.set(s.name, scratch.get(s.name)!.slice());
      } else for (const s of sites) full.set(s.name, g.get(s.name)!.map((x) => -lr * fullClip * x));
      const grad = new Map<string, number>(), gradFloor = new Map<string, number>();
      const factors = new Map<string, { A: Float64Array; B: Float64Array }>();
      let record: Record<string, Float64Array> | undefined;
      for (const [i, s] of sites.entries()) {
        const p = pairs.get(s.name)!;
        const A = params.get(p.A)!, B = params.get(p.B)!, gA = grads.get(p.A)!, gB = grads.get(p.B)!;
        const adj = pro ? loraproEquivalent(A, B, gA, gB, p, step === 0, o.shift) : null;
        const eq = adj ? adj.equivalent : equivalentGradient(A, B, gA, gB, p);
        grad.set(s.name, rel(eq, g.get(s.name)!));
        gradFloor.set(s.name, rel(tangentProjector(Float64Array.from(A), Float64Array.from(B), p)(Float64Array.from(g.get(s.name)!)), g.get(s.name)!));
        factors.set(s.name, { A: Float64Array.from(A), B: Float64Array.from(B) });
        if (i === 0 && adj && dump && step < dump.steps) {
          record = { A: Float64Array.from(A), B: Float64Array.from(B), g: Float64Array.from(g.get(s.name)!), gA: Float64Array.from(gA), gB: Float64Array.from(gB), gAh: adj.gAh, gBh: adj.gBh, equivalent: eq, lr: Float64Array.of(lr) };
        }
      }
      at = { step, before: deltas(), full, grad, gradFloor, factors, record };
    },
    onStep: () => {
      const { step, before, full, grad, gradFloor, factors, record } = at!;
      const after = deltas();
      const fig = sites.map((s) => {
        const upd = after.get(s.name)!.map((x, i) => x - before.get(s.name)![i]);
        const f = full.get(s.name)!;
        const p = pairs.get(s.name)!, { A, B } = factors.get(s.name)!;
        const dA = Float64Array.from(set.params.get(p.A)!, (x, i) => x - A[i]), dB = Float64Array.from(set.params.get(p.B)!, (x, i) => x - B[i]);
        const [BdA, dBA, dBdA] = [matmulF64(B, dA, p.m, p.r, p.n), matmulF64(dB, A, p.m, p.r, p.n), matmulF64(dB, dA, p.m, p.r, p.n)];
        const first = BdA.map((x, i) => p.s * (x + dBA[i]));
        const T = tangentProjector(A, B, p);
        const c = cosine(upd, f);
        return {
          update: rel(upd, f), cos: c, ratio: norm(upd) / norm(f), grad: grad.get(s.name)!, firstOrder: rel(first, f), secondShare: p.s * norm(dBdA) / norm(upd),
          floor: rel(T(Float64Array.from(f)), f), gradFloor: gradFloor.get(s.name)!, matched: Math.sqrt(Math.max(0, 2 - 2 * c)),
        };
      });
      const mean = (k: keyof PerStepFigures) => fig.reduce((a, x) => a + x[k], 0) / fig.length;
      rows.push({ update: mean('update'), cos: mean('cos'), ratio: mean('ratio'), grad: mean('grad'), firstOrder: mean('firstOrder'), secondShare: mean('secondShare'), floor: mean('floor'), gradFloor: mean('gradFloor'), matched: mean('matched') });
      if (record) {
        const p = pairs.get(sites[0].name)!;
        const shapes: Record<string, number[]> = { A: [p.r, p.n], B: [p.m, p.r], g: [p.m, p.n], gA: [p.r, p.n], gB: [p.m, p.r], gAh: [p.r, p.n], gBh: [p.m, p.r], equivalent: [p.m, p.n], lr: [1] };
        for (const [k, v] of Object.entries(record)) dumped[`step${step}.${k}`] = { dtype: 'F64', shape: shapes[k], data: v };
        dumped[`step${step}.A_after`] = { dtype: 'F64', shape: [p.r, p.n], data: Float64Array.from(set.params.get(p.A)!) };
        dumped[`step${step}.B_after`] = { dtype: 'F64', shape: [p.m, p.r], data: Float64Array.from(set.params.get(p.B)!) };
      }
    },
  });
  try {
    await t.fit({ train });
  } finally {
    await t.release();
    await ref.release();
  }
  if (dump && pro) {
    const p = pairs.get(sites[0].name)!;
    writeSafetensors(dump.file, dumped, { site: sites[0].name, m: String(p.m), n: String(p.n), r: String(p.r), s: String(p.s), regime: o.regime, shift: String(o.shift ?? 1e-8), steps: String(Math.min(dump.steps, rows.length)) });
  }
  return rows;
}

const isMain = process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!);
if (isMain) {
  const arg = (k: string, d: string) => {
    const i = process.argv.indexOf(k);
    return i > 0 ? process.argv[i + 1] : d;
  };
  const smoke = process.argv.includes('--smoke');
  // The smoke run takes the BERT fixture: seven graphs of the bundled encoder to compile would take a minute.
  const spec = arg('--model', smoke ? new URL('../test/fixtures/hf/bert', import.meta.url).pathname : 'use');
  const m = await loadModel(spec, 'encoder');
  const { loadImdb } = await import('../src/data/imdb.ts');
  const steps = Number(arg('--steps', smoke ? '2' : '8')), batchSize = smoke ? 2 : 8;
  const texts = loadImdb({ seed: 1234 }).train.slice(0, steps * batchSize);
  const data = texts.map((x) => ({ ids: m.tokenizer!.encode(x.text).slice(0, smoke ? 16 : 64), label: x.label }));
  const targets = arg('--targets', spec === 'use' ? 'qkv,conv1' : 'all-linear');
  const regime = arg('--regime', 'adamw') as 'adamw' | 'sgd';
  const measures = arg('--measure', 'cumulative,per-step').split(',');
  for (const x of measures) if (x !== 'cumulative' && x !== 'per-step') throw new Error(`--measure takes cumulative and/or per-step (comma-separated), got '${x}'`);
  const lr = Number(arg('--lr', regime === 'sgd' ? '0.1' : '1e-4'));
  const shift = process.argv.includes('--lorapro-shift') ? Number(arg('--lorapro-shift', '')) : undefined;
  if (shift !== undefined && !(shift >= 0)) throw new Error(`--lorapro-shift takes a number ≥ 0 (LoRA-Pro's δ in pinv(M + δ·I); the official code's is 1e-8), got '${arg('--lorapro-shift', '')}'`);
  const maxGradNorm = Number(arg('--max-grad-norm', '0'));
  if (!(maxGradNorm >= 0)) throw new Error(`--max-grad-norm takes a number ≥ 0 (0 = no clipping; the official scripts run with 1), got '${arg('--max-grad-norm', '')}'`);
  const o: ClaimOptions = { steps, lr, r: 8, alpha: 16, batchSize, seed: 0, regime, shift, maxGradNorm: maxGradNorm || undefined, targets: targets === 'all-linear' ? 'all-linear' : targets.split(',') };
  const f = (x: number) => x.toFixed(4);
  if (measures.includes('cumulative')) {
    const rows = await updateDistances(m.model, data, o);
    console.log(`${spec}, ${regime}, lr ${lr}${shift !== undefined ? `, LoRA-Pro shift ${shift}` : ''}${maxGradNorm ? `, max grad norm ${maxGradNorm}` : ''}, ${steps} steps: cumulative ΔW = W_t − W_0 of three runs`);
    console.log(`| step | LoRA distance | LoRA-Pro distance | LoRA cosine | LoRA-Pro cosine |\n|---|---|---|---|---|`);
    for (const r of rows) console.log(`| ${r.step} | ${f(r.lora)} | ${f(r.lorapro)} | ${f(r.loraCos)} | ${f(r.loraproCos)} |`);
  }
  if (measures.includes('per-step')) {
    const dumpFile = process.argv.includes('--dump') ? arg('--dump', '') : '';
    const rows = await perStepDistances(m.model, data, o, dumpFile ? { file: dumpFile, steps: Number(arg('--dump-steps', '3')) } : undefined);
    console.log(`${spec}, ${regime}, lr ${lr}${shift !== undefined ? `, LoRA-Pro shift ${shift}` : ''}${maxGradNorm ? `, max grad norm ${maxGradNorm}` : ''}, ${steps} steps: per step, each method's update to W against full fine-tuning's from the same W (same batch)`);
    console.log(`| step | LoRA update distance | LoRA-Pro update distance | LoRA cosine | LoRA-Pro cosine | LoRA ‖Δ‖/‖Δ_full‖ | LoRA-Pro ‖Δ‖/‖Δ_full‖ | LoRA ‖g̃−g‖/‖g‖ | LoRA-Pro ‖g̃−g‖/‖g‖ |\n|---|---|---|---|---|---|---|---|---|`);
    for (const r of rows) console.log(`| ${r.step} | ${f(r.lora.update)} | ${f(r.lorapro.update)} | ${f(r.lora.cos)} | ${f(r.lorapro.cos)} | ${f(r.lora.ratio)} | ${f(r.lorapro.ratio)} | ${f(r.lora.grad)} | ${f(r.lorapro.grad)} |`);
    console.log(`the same steps: the distance at matched norm √(2 − 2·cos); the first-order part Δ₁ = s(B·ΔA + ΔB·A) and the second-order share ‖s·ΔB·ΔA‖/‖Δ‖; the floors: full fine-tuning's update (and g) against their orthogonal projection onto {B·X + Y·A} at the method's point`);
    console.log(`| step | LoRA matched-norm distance | LoRA-Pro matched-norm distance | LoRA first-order distance | LoRA-Pro first-order distance | LoRA second-order share | LoRA-Pro second-order share | update floor at LoRA's point | update floor at LoRA-Pro's point | gradient floor at LoRA-Pro's point |\n|---|---|---|---|---|---|---|---|---|---|`);
    for (const r of rows) console.log(`| ${r.step} | ${f(r.lora.matched)} | ${f(r.lorapro.matched)} | ${f(r.lora.firstOrder)} | ${f(r.lorapro.firstOrder)} | ${f(r.lora.secondShare)} | ${f(r.lorapro.secondShare)} | ${f(r.lora.floor)} | ${f(r.lorapro.floor)} | ${f(r.lorapro.gradFloor)} |`);
    if (dumpFile) console.log(`wrote ${dumpFile}`);
  }
}
