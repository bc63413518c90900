// The main job: fine-tune an encoder with an adapter on a labeled text set and
// compare it with the frozen-encoder linear probe on the same test split.

import fs from 'node:fs';
import path from 'node:path';
import { AdapterSet, PEFT_PREFIX } from '../adapters/inject.ts';
import { getMethod } from '../adapters/registry.ts';
import type { TargetModules } from '../adapters/targets.ts';
import { loadImdb } from '../data/imdb.ts';
import { readJsonl } from '../data/jsonl.ts';
import { SPLIT_SEED, splitExamples } from '../data/split.ts';
import { BertModel } from '../models/bert.ts';
import { loadModel, peftBaseModelName, type LoadedModel, type LoadOptions, type TextTokenizer } from '../models/load.ts';
import { projectionMatrices, saveFullModel } from './full.ts';
import { USE_MODEL_NAME } from '../models/use_encoder.ts';
import type { EncoderModel } from '../models/types.ts';
import { loadPeftAdapter, lorakitBlockLost, readAdapter } from '../peft/adapter_files.ts';
import { saveTrainedAdapter, type SaveAs } from '../peft/save_trained.ts';
import { startFromAdapter, type StartFromAdapter } from './from_adapter.ts';
import type { KeptPeftConfig } from '../peft/adapter_files.ts';
import { setEvalRank } from '../adapters/dylora/index.ts';
import { truncateLoraRank } from '../adapters/lora/truncate.ts';
import { loraPlusGroups } from '../adapters/lora/plus.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { HEAD_B, HEAD_W } from '../train/classifier.ts';
import { accuracy, probeLogits, trainLinearProbe } from '../train/linear_probe.ts';
import { ClassificationTrainer, EncodedExample } from '../train/trainer.ts';
import { checkBaseDtype, describeQuantization, normsReport, peakRss, USE_DEFAULT_TARGETS, type JobUi } from './train.ts';
import type { NormPeak } from '../train/norm_monitor.ts';
import type { BaseDtype } from '../quant/base_dtype.ts';
import { float32Of } from '../quant/quantized_weights.ts';
import type { OptimizerSpec } from '../train/optimizers.ts';

export type { JobUi, TextTokenizer };

export interface ClassifyJobOptions {
  model: string; // 'use' (bundled) or a folder
  /** The form of the frozen base's linear weights (src/quant/): default fp32. */
  baseDtype?: BaseDtype;
  data: string; // 'imdb' (bundled) or a JSONL file
  method: string;
  methodConfig: Record<string, unknown>;
  /** Default: the bundled encoder's attention and FFN projections; 'all-linear' for a Hugging Face folder. */
  targetModules?: TargetModules;
  epochs: number;
  lr: number;
  headLrScale: number;
  batchSize: number;
  seed: number;
  out: string;
  maxTrain?: number;
  maxEval?: number;
  maxLen: number;
  threads?: number;
  resume: boolean;
  baseline: boolean;
  patience?: number;
  /** LoRA+ (src/adapters/lora/plus.ts): lora_B's learning rate is this × lora_A's. Recorded in the adapter's lorakit block. */
  loraplusLrRatio?: number;
  /**
   * Where the trainer's classification head starts: 'random' (a fresh head) or
   * 'probe' (the frozen-encoder linear probe, i.e. LP-FT, Kumar et al. 2022:
   * adapter training then starts from the baseline's predictions instead of
   * spending its first steps fitting a random head).
   */
  headInit?: 'random' | 'probe';
  /** Loop settings (src/train/loop.ts); defaults: weight decay 0.01, warmup 0.06, linear decay, clipping at 1, a checkpoint every 50 steps. */
  weightDecay?: number;
  warmupRatio?: number;
  schedule?: 'linear' | 'cosine' | 'constant';
  maxGradNorm?: number;
  checkpointEvery?: number;
  /** Stop after this many steps in this process (tests simulate a crash with it). */
  stopAfterSteps?: number;
  /** See TrainJobOptions.saveAs (default: the plain LoRA form for methods that prune). */
  saveAs?: SaveAs;
  /** Start from this saved adapter folder (its config, weights and classification head; a fresh optimizer). */
  fromAdapter?: StartFromAdapter;
  /** The update rule (default AdamW). */
  optimizer?: OptimizerSpec;
  /** Full fine-tuning: every weight of the encoder trains (no adapter); the model is written to <out>/model. */
  full?: boolean;
  /** Steps between the norm monitor's records in metrics.jsonl (default 10; every run is monitored). */
  normsEvery?: number;
  /** Also plot the monitor's records: <out>/norms.svg. */
  monitorNorms?: boolean;
}


export interface ClassifyResult {
  rows: { system: string; testAccuracy: number; trainableParams: number; seconds: number }[];
  /** The frozen base's form when not fp32 (--base-dtype). */
  baseDtype?: BaseDtype;
  split: { train: number; validation: number; test: number };
  adapterDir: string;
  /** The saved format, and for a pruned method its LoRA ranks and adapter parameters. */
  saved?: { saveAs: SaveAs; nativeDir?: string; ranks?: Record<string, number>; adapterParams: number };
  /** Stopped by stopAfterSteps before the end (nothing saved but checkpoints). */
  stopped?: boolean;
  optimizer?: string;
  /** Bytes of the adapter run's optimizer state (moments, projectors) at the end. */
  optimizerStateBytes?: number;
  /** The process's peak resident memory, in bytes. */
  peakRssBytes?: number;
  /** The norm monitor's largest Γ/√(ln L) over the adapter run. */
  normsPeak?: NormPeak;
  /** With monitorNorms: the plot of the monitor's records. */
  normsPlot?: string;
}

/** The bundled encoder or a Hugging Face encoder folder (BERT, RoBERTa, DistilBERT) with its tokenizer. */
export async function loadEncoder(spec: string, opts: LoadOptions = {}): Promise<{ model: EncoderModel; tokenizer: TextTokenizer; name: string }> {
  const m = await loadModel(spec, undefined, opts);
  return { ...encoderOf(m, spec), name: m.name };
}

function encoderOf(m: LoadedModel, spec: string): { model: EncoderModel; tokenizer: TextTokenizer } {
  if (m.kind !== 'encoder') throw new Error(`--model '${spec}': a ${m.kind} model; classification trains an encoder (the bundled 'use', or a BERT / RoBERTa / DistilBERT folder)`);
  if (!m.tokenizer) throw new Error(`${path.join(spec, 'tokenizer.json')}: missing (--model <folder> encodes text with the folder's own tokenizer)`);
  return { model: m.model, tokenizer: m.tokenizer };
}

/** A BERT folder's own `classifier` (on the pooler output, as in BertForSequenceClassification) seeds the trainer's head when the label count matches. */
function seedHeadFromFolder(model: EncoderModel, head: Map<string, Float32Array>, numLabels: number): void {
  if (!(model instanceof BertModel) || model.pooling !== 'pooler') return;
  const w = model.weights.get(HEAD_W), b = model.weights.get(HEAD_B);
  if (w && b && w.shape[0] === numLabels && w.shape[1] === model.hiddenSize) {
    head.get(HEAD_W)!.set(float32Of(w.data));
    head.get(HEAD_B)!.set(b.data);
  }
}

/** The split is fixed by SPLIT_SEED, independent of the training seed, so runs with different seeds share a test set. */
export { SPLIT_SEED };

export function loadData(spec: string, splitSeed = SPLIT_SEED) {
  if (spec === 'imdb') {
    const d = loadImdb({ seed: splitSeed });
    return { train: d.train, validation: d.validation, test: d.test, labelNames: d.labelNames };
  }
  // A single JSONL file: a seeded 80/10/10 split.
  const { examples, labelNames } = readJsonl(spec);
  return { ...splitExamples(examples, splitSeed), labelNames };
}

/**
 * The frozen-encoder baseline: embed every split once, fit a linear probe on
 * train (best epoch on validation), score test. Memoized per (model, data,
 * sizes, seed) so a comparison of many methods in one process embeds once.
 */
const probeCache = new Map<string, { head: Map<string, Float32Array>; testAccuracy: number; seconds: number }>();
async function frozenProbe(model: EncoderModel, splits: Record<'train' | 'validation' | 'test', EncodedExample[]>, numLabels: number, o: ClassifyJobOptions, ui: JobUi) {
  const key = JSON.stringify([o.model, o.baseDtype ?? 'fp32', o.data, o.maxTrain, o.maxEval, o.maxLen, o.seed]);
  const hit = probeCache.get(key);
  if (hit) return hit;
  const t0 = performance.now();
  const frozen = new ClassificationTrainer(model, null, numLabels, { epochs: 1, lr: 1, batchSize: 64, seed: o.seed, threads: o.threads });
  ui.startPhase('embed (frozen encoder)', splits.train.length + splits.validation.length + splits.test.length);
  const embed = async (xs: EncodedExample[]) => ({ x: await frozen.embed(xs, (n) => ui.advance?.(n)), labels: xs.map((e) => e.label) });
  const [tr, va, te] = [await embed(splits.train), await embed(splits.validation), await embed(splits.test)];
  ui.endPhase();
  await frozen.release();
  const h = model.hiddenSize;
  const probe = trainLinearProbe(tr, va, h, numLabels, { seed: o.seed });
  const testAccuracy = accuracy(probeLogits(probe.head, te.x, te.labels.length, h, numLabels), te.labels, numLabels);
  const res = { head: probe.head, testAccuracy, seconds: (performance.now() - t0) / 1000 };
  probeCache.set(key, res);
  return res;
}

export async function runClassificationJob(o: ClassifyJobOptions, ui: JobUi): Promise<ClassifyResult> {
  checkBaseDtype(o.baseDtype, !!o.full);
  const loaded = await loadModel(o.model, 'encoder', { baseDtype: o.baseDtype });
  if (loaded.quantization) ui.info(describeQuantization(loaded.quantization));
  const { model, tokenizer, name } = { ...(await encoderOf(loaded, o.model)), name: loaded.name };
  if (model instanceof BertModel && o.maxLen > model.maxSequenceLength) {
    ui.info(`--max-len ${o.maxLen} is longer than ${name} has position embeddings for: using ${model.maxSequenceLength}`);
    o = { ...o, maxLen: model.maxSequenceLength };
  }
  const data = loadData(o.data);
  const cap = <T>(xs: T[], n?: number) => (n !== undefined ? xs.slice(0, n) : xs);
  const encode = (xs: { text: string; label: number }[]): EncodedExample[] =>
    xs.map((x) => ({ ids: tokenizer.encode(x.text).slice(0, o.maxLen), label: x.label }));
  const train = encode(cap(data.train, o.maxTrain));
  const validation = encode(cap(data.validation, o.maxEval));
  const test = encode(cap(data.test, o.maxEval));
  const numLabels = data.labelNames.length;
  ui.info(`data: ${o.data} — ${train.length} train / ${validation.length} validation / ${test.length} test, ${numLabels} labels (${data.labelNames.join(', ')})`);
  fs.mkdirSync(o.out, { recursive: true });
  const rows: ClassifyResult['rows'] = [];

  let probeHead: Map<string, Float32Array> | undefined;
  if (o.baseline || o.headInit === 'probe') {
    const probe = await frozenProbe(model, { train, validation, test }, numLabels, o, ui);
    probeHead = probe.head;
    if (o.baseline) rows.push({ system: 'frozen encoder + linear head', testAccuracy: probe.testAccuracy, trainableParams: model.hiddenSize * numLabels + numLabels, seconds: probe.seconds });
  }

  const t0 = performance.now();
  let adapters: AdapterSet | null = null;
  let keptConfig: KeptPeftConfig | undefined;
  // The classification head is the task's (HEAD_W/HEAD_B), not the folder's own classifier of another size.
  const withoutHead = new Map([...model.weights].filter(([k]) => k !== HEAD_W && k !== HEAD_B));
  const start = o.fromAdapter ? startFromAdapter({ sites: model.sites, weights: withoutHead }, o.fromAdapter, { warn: (m) => ui.info(m) }) : undefined;
  if (start) {
    if (o.full) throw new Error('--from-adapter continues an adapter; --full trains the weights themselves: give one of them');
    adapters = start.set;
    keptConfig = start.peft;
  } else if (!o.full) {
    const m = getMethod(o.method);
    const targetModules = o.targetModules ?? (o.model === 'use' || o.model === 'default' ? USE_DEFAULT_TARGETS : 'all-linear');
    adapters = new AdapterSet(m, m.schema.parse(o.methodConfig), model.sites, model.weights, { targetModules, seed: o.seed });
  }
  const method = adapters?.method ?? getMethod(o.method);
  const system = adapters ? method.name : 'fully fine-tuned';
  const trainer = new ClassificationTrainer(model, adapters, numLabels, {
    full: o.full ? { weights: model.weights, matrices: projectionMatrices(model) } : undefined,
    epochs: o.epochs,
    lr: o.lr,
    headLrScale: o.headLrScale,
    batchSize: o.batchSize,
    seed: o.seed,
    threads: o.threads,
    outDir: o.out,
    resume: o.resume,
    patience: o.patience,
    maxGradNorm: o.maxGradNorm ?? 1.0,
    weightDecay: o.weightDecay,
    warmupRatio: o.warmupRatio,
    schedule: o.schedule,
    stopAfterSteps: o.stopAfterSteps,
    optimizer: o.optimizer,
    optimizerGroups: o.loraplusLrRatio !== undefined ? loraPlusGroups(o.loraplusLrRatio) : undefined,
    checkpointEvery: o.checkpointEvery ?? 50,
    monitorNorms: { every: o.normsEvery ?? 10 },
    adapterLoaded: !!start,
    onStep: (s) => ui.step(s),
    onEpoch: (e) => ui.eval({ epoch: e.epoch, step: 0, metrics: { accuracy: e.valAccuracy, loss: e.valLoss }, improved: e.improved }),
  });
  const headParams = trainer.head.get(HEAD_W)!.length + trainer.head.get(HEAD_B)!.length;
  const trainedParams = [...trainer.params().values()].reduce((s, t) => s + t.length, 0) - headParams;
  if (adapters) ui.info(`${method.name}: ${adapters.targets.length} modules (${adapters.targets.map((s) => s.name).join(', ')}), ${trainedParams} adapter parameters`);
  else ui.info(`full fine-tuning: every weight of the encoder trains, ${trainedParams} parameters`);
  seedHeadFromFolder(model, trainer.head, numLabels);
  if (o.headInit === 'probe') for (const [k, v] of probeHead!) trainer.head.get(k)!.set(v);
  if (start) {
    // The saved head (modules_to_save) continues too; an adapter without one (PEFT's, another task's) keeps the fresh head.
    const hw = start.extraTensors.get(HEAD_W), hb = start.extraTensors.get(HEAD_B);
    if (hw && hb) {
      if (hw.shape[0] !== numLabels || hw.shape[1] !== model.hiddenSize) throw new Error(`--from-adapter ${o.fromAdapter!.dir}: its classification head is [${hw.shape}], this data and model need [${numLabels},${model.hiddenSize}]`);
      trainer.head.get(HEAD_W)!.set(hw.data);
      trainer.head.get(HEAD_B)!.set(hb.data);
    }
    ui.info(`from adapter ${o.fromAdapter!.dir}: ${method.name} (its config and weights${hw && hb ? ', classification head' : '; no classification head in it: a fresh one'}); the optimizer starts fresh`);
  }
  ui.startPhase(`train ${system}`, Math.ceil(train.length / o.batchSize) * o.epochs);
  const fit = await trainer.fit(train, validation);
  ui.endPhase();
  if (fit.stopped) {
    await trainer.release();
    return { rows, split: { train: train.length, validation: validation.length, test: test.length }, adapterDir: '', stopped: true };
  }
  const res = await trainer.evaluate(test);
  rows.push({ system: `${system} encoder + linear head`, testAccuracy: res.accuracy, trainableParams: trainedParams + headParams, seconds: (performance.now() - t0) / 1000 });
  const adapterDir = path.join(o.out, adapters ? 'adapter' : 'model');
  const extra = { labels: data.labelNames, max_length: o.maxLen, data: o.data, split_seed: SPLIT_SEED, ...(o.loraplusLrRatio !== undefined && { loraplus_lr_ratio: o.loraplusLrRatio }), ...(loaded.quantization && { base_dtype: loaded.quantization.dtype }) };
  let savedInfo: ClassifyResult['saved'];
  if (adapters) {
    const saved = saveTrainedAdapter(adapterDir, adapters, {
      baseModel: peftBaseModelName(loaded),
      taskType: 'SEQ_CLS',
      modulesToSave: new Map([
        [HEAD_W, { shape: [numLabels, model.hiddenSize], data: trainer.head.get(HEAD_W)! }],
        [HEAD_B, { shape: [numLabels], data: trainer.head.get(HEAD_B)! }],
      ]),
      extra: { ...extra, ...(loaded.dir && { base_model_dir: path.resolve(loaded.dir) }), ...(o.fromAdapter && { from_adapter: path.resolve(o.fromAdapter.dir) }) },
      peftConfig: keptConfig,
    }, o.saveAs);
    const { dir: _dir, ...info } = saved;
    savedInfo = info;
  } else saveFullModel(adapterDir, loaded, trainer.task.params, { task: 'classification', ...extra });
  await trainer.release();
  const result: ClassifyResult = {
    rows, split: { train: train.length, validation: validation.length, test: test.length }, adapterDir,
    optimizer: o.optimizer?.kind ?? 'adamw', optimizerStateBytes: fit.optimizerStateBytes, peakRssBytes: peakRss(),
    normsPeak: fit.normsPeak, normsPlot: o.monitorNorms ? normsReport(o.out, fit.normsPeak, ui) : undefined,
    ...(savedInfo && { saved: savedInfo }), ...(loaded.quantization && { baseDtype: loaded.quantization.dtype }),
  };
  writeFileAtomic(path.join(o.out, 'results.json'), JSON.stringify(result, null, 2) + '\n');
  return result;
}

export interface EvalJobOptions {
  adapter: string;
  /** The form of the frozen base's linear weights (src/quant/): default fp32. */
  baseDtype?: BaseDtype;
  data: string;
  maxEval?: number;
  threads?: number;
  split: 'test' | 'validation';
  /** Evaluate at rank b: a DyLoRA adapter at its rank b (no retraining), a LoRA truncated to its first b components. */
  rank?: number;
  /** Where a folder without lorakit's block (saved by PEFT) says what it falls back to (default console.warn). */
  warn?: (message: string) => void;
}

/** An adapter read at rank b: DyLoRA's own truncation, or a LoRA's first b components. */
export function atRank(set: AdapterSet, b: number, source: string): void {
  if (set.method.name === 'dylora') setEvalRank(set, b);
  else if (set.method.name === 'lora') truncateLoraRank(set, b);
  else throw new Error(`--rank: ${source} is a ${set.method.name} adapter; a rank can be chosen for dylora (any b ≤ r) and lora (its first b components)`);
}

/** Evaluates a saved adapter folder (adapter + head) on a split of the data. */
export async function runEvalJob(o: EvalJobOptions): Promise<{ accuracy: number; loss: number; n: number }> {
  const saved = readAdapter(o.adapter);
  const meta = saved.config.lorakit ?? {};
  const lost = lorakitBlockLost(saved, [
    { field: 'max_length', fallback: '128 tokens' },
    { field: 'split_seed', fallback: `the default split (seed ${SPLIT_SEED})` },
    { field: 'base_model_dir', fallback: `base_model_name_or_path '${saved.config.base_model_name_or_path ?? USE_MODEL_NAME}'` },
  ]);
  if (lost) (o.warn ?? console.warn)(lost);
  // The folder it was trained on (lorakit's block), else base_model_name_or_path where that is a folder here.
  const base = [meta.base_model_dir, saved.config.base_model_name_or_path].find((b) => typeof b === 'string' && b !== USE_MODEL_NAME && fs.existsSync(b));
  const { model, tokenizer } = await loadEncoder(base ?? 'use', { baseDtype: o.baseDtype });
  // Every method through the PEFT loader: rank/alpha patterns, seeded bases, hook state (SMoRA's β), shapes checked.
  // The task head (HEAD_W/HEAD_B, modules_to_save) is applied below; a folder's own classifier of another size is not a conflict.
  const withoutHead = new Map([...model.weights].filter(([k]) => k !== HEAD_W && k !== HEAD_B));
  const adapters = loadPeftAdapter({ sites: model.sites, weights: withoutHead }, o.adapter).set;
  if (o.rank !== undefined) atRank(adapters, o.rank, o.adapter);
  const hw = saved.tensors.get(PEFT_PREFIX + HEAD_W), hb = saved.tensors.get(PEFT_PREFIX + HEAD_B);
  if (!hw || !hb) throw new Error(`${o.adapter}: no classification head (${HEAD_W}) in the adapter file: was it trained with 'lorakit train'?`);
  const numLabels = hw.shape[0];
  const data = loadData(o.data, meta.split_seed ?? SPLIT_SEED);
  const maxLen = meta.max_length ?? 128;
  const examples = (o.maxEval !== undefined ? data[o.split].slice(0, o.maxEval) : data[o.split]).map((x) => ({ ids: tokenizer.encode(x.text).slice(0, maxLen), label: x.label }));
  const trainer = new ClassificationTrainer(model, adapters, numLabels, { epochs: 1, lr: 1, batchSize: 32, seed: 0, threads: o.threads });
  trainer.head.get(HEAD_W)!.set(hw.data);
  trainer.head.get(HEAD_B)!.set(hb.data);
  const r = await trainer.evaluate(examples);
  await trainer.release();
  return { accuracy: r.accuracy, loss: r.loss, n: examples.length };
}
