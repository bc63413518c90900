// LoRA-Pro's claim, measured: its LoRA updates follow full fine-tuning's
// AdamW trajectory more closely than plain LoRA's. Three runs from the same
// model, head, batches and learning rate (AdamW without weight decay,
// constant lr): full fine-tuning, LoRA with AdamW, LoRA with LoRA-Pro. After
// each of the first steps, per adapted module, the relative distance
//   ‖ΔW_method − ΔW_full‖_F / ‖ΔW_full‖_F,   ΔW = W_t − W_0 (LoRA: s·B·A),
// averaged over the modules.
//
//   npx tsx bench/lorapro_claim.ts [--model use|DIR] [--regime adamw|sgd] [--steps 8] [--lr 1e-4] [--targets qkv,conv1]
//   npx tsx bench/lorapro_claim.ts --smoke   (2 steps of batch 2: seconds; the test suite runs it)
import { AdapterSet } from '../src/adapters/inject.ts';
import { getMethod } from '../src/adapters/registry.ts';
import { toOutIn } from '../src/adapters/inject.ts';
import { loadModel } from '../src/models/load.ts';
import type { EncoderModel, LinearSite, WeightMap } from '../src/models/types.ts';
import { Trainer } from '../src/train/loop.ts';
import { ClassificationTask, type EncodedExample } from '../src/train/tasks/classification.ts';

export interface ClaimOptions {
  steps: number; lr: number; r: number; alpha: number; batchSize: number; seed: number; targets: string[] | 'all-linear';
  /** 'adamw': full AdamW vs LoRA with AdamW vs LoRA-Pro (official, Adam moments); 'sgd': the same with SGD and LoRA-Pro's SGD form. */
  regime: 'adamw' | 'sgd';
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

export async function updateDistances(model: EncoderModel, data: EncodedExample[], o: ClaimOptions): Promise<StepDistance[]> {
  const lora = getMethod('lora');
  const clone = (w: WeightMap): WeightMap => new Map([...w].map(([k, v]) => [k, { shape: v.shape, data: Float32Array.from(v.data) }]));
  const fit = { epochs: 1, lr: o.lr, batchSize: o.batchSize, seed: o.seed, weightDecay: 0, warmupRatio: 0, schedule: 'constant' as const, threads: 2 };
  const train = data.slice(0, o.steps * o.batchSize);
  const sitesOf = (set: AdapterSet) => set.targets;
  const probe = new AdapterSet(lora, lora.schema.parse({ r: o.r, lora_alpha: o.alpha }), model.sites, model.weights, { targetModules: o.targets, seed: o.seed });
  const sites: LinearSite[] = sitesOf(probe);

  // Full fine-tuning: ΔW of the target modules after each step.
  const fullModel = model.withWeights(clone(model.weights));
  const full: Map<string, Float32Array>[] = [];
  const w0 = new Map(sites.map((s) => [s.name, toOutIn(s, Float32Array.from(model.weights.get(s.weightKey)!.data))]));
  const tf = new Trainer(new ClassificationTask(fullModel, { numLabels: 2, seed: o.seed }), null, {
    ...fit, full: { weights: fullModel.weights }, optimizer: { kind: o.regime },
    onStep: () => full.push(new Map(sites.map((s) => [s.name, toOutIn(s, fullModel.weights.get(s.weightKey)!.data).map((x, i) => x - w0.get(s.name)![i])]))),
  });
  await tf.fit({ train });
  await tf.release();

  const adapterRun = async (pro: boolean) => {
    const set = new AdapterSet(lora, lora.schema.parse({ r: o.r, lora_alpha: o.alpha }), model.sites, model.weights, { targetModules: o.targets, seed: o.seed });
    const deltas: Map<string, Float32Array>[] = [];
    const t = new Trainer(new ClassificationTask(model, { numLabels: 2, seed: o.seed }), set, {
      ...fit, optimizer: pro ? { kind: 'lorapro', moments: o.regime === 'adamw' ? 'adam' : 'none' } : { kind: o.regime },
      onStep: () => deltas.push(new Map(sites.map((s) => [s.name, set.deltaFor(s, model.weights.get(s.weightKey)!.data)]))),
    });
    await t.fit({ train });
    await t.release();
    return deltas;
  };
  const [plain, pro] = [await adapterRun(false), await adapterRun(true)];
  const rel = (a: Float32Array, b: Float32Array) => {
    let num = 0, den = 0;
    for (let i = 0; i < a.length; i++) {
      num += (a[i] - b[i]) ** 2;
      den += b[i] ** 2;
    }
    return Math.sqrt(num / den);
  };
  const cos = (a: Float32Array, b: Float32Array) => {
    let ab = 0, aa = 0, bb = 0;
    for (let i = 0; i < a.length; i++) {
      ab += a[i] * b[i];
      aa += a[i] * a[i];
      bb += b[i] * b[i];
    }
    return ab / Math.sqrt(aa * bb);
  };
  const mean = (f: (site: LinearSite) => number) => sites.reduce((s, site) => s + f(site), 0) / sites.length;
  return full.map((f, k) => ({
    step: k + 1,
    lora: mean((site) => rel(plain[k].get(site.name)!, f.get(site.name)!)),
    lorapro: mean((site) => rel(pro[k].get(site.name)!, f.get(site.name)!)),
    loraCos: mean((site) => cos(plain[k].get(site.name)!, f.get(site.name)!)),
    loraproCos: mean((site) => cos(pro[k].get(site.name)!, f.get(site.name)!)),
  }));
}

const isMain = process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!);
if (isMain) {
  const arg = (k: string, d: string) => {
    const i = process.argv.indexOf(k);
    return i > 0 ? process.argv[i + 1] : d;
  };
  const spec = arg('--model', 'use');
  const m = await loadModel(spec, 'encoder');
  const { loadImdb } = await import('../src/data/imdb.ts');
  const smoke = process.argv.includes('--smoke');
  const steps = Number(arg('--steps', smoke ? '2' : '8')), batchSize = smoke ? 2 : 8;
  const texts = loadImdb({ seed: 1234 }).train.slice(0, steps * batchSize);
  const data = texts.map((x) => ({ ids: m.tokenizer!.encode(x.text).slice(0, smoke ? 16 : 64), label: x.label }));
  const targets = arg('--targets', spec === 'use' ? 'qkv,conv1' : 'all-linear');
  const regime = arg('--regime', 'adamw') as 'adamw' | 'sgd';
  const rows = await updateDistances(m.model, data, { steps, lr: Number(arg('--lr', regime === 'sgd' ? '0.1' : '1e-4')), r: 8, alpha: 16, batchSize, seed: 0, regime, targets: targets === 'all-linear' ? 'all-linear' : targets.split(',') });
  console.log(`${spec}, ${regime}, ${steps} steps`);
  console.log(`| step | LoRA distance | LoRA-Pro distance | LoRA cosine | LoRA-Pro cosine |\n|---|---|---|---|---|`);
  for (const r of rows) console.log(`| ${r.step} | ${r.lora.toFixed(4)} | ${r.lorapro.toFixed(4)} | ${r.loraCos.toFixed(4)} | ${r.loraproCos.toFixed(4)} |`);
}
