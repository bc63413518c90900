// `lorakit train --task causal-lm|seq2seq|rerank|embed`: a model ('use' or a
// Hugging Face folder) + JSONL data → the task (src/train/tasks/) trained by
// the one loop with any adapter method. Classification (with its frozen-
// encoder baseline) is src/tasks/classification.ts. Every task writes the
// same layout:
//
//   <out>/adapter/         PEFT files (adapter_config.json + adapter_model.safetensors;
//                          a task head, if any, as modules_to_save)
//   <out>/metrics.jsonl    one JSON object per step / evaluation / resume
//   <out>/results.json     what was trained, on what, and the final figures
//   <out>/checkpoints/     atomic checkpoints; --resume continues from the newest

import fs from 'node:fs';
import { USE_DEFAULT_TARGETS } from '../models/use_encoder.ts';
import path from 'node:path';
import { AdapterSet } from '../adapters/inject.ts';
import { getMethod } from '../adapters/registry.ts';
import { loraPlusGroups } from '../adapters/lora/plus.ts';
import type { TargetModules } from '../adapters/targets.ts';
import { readCausalLmJsonl, readEmbedJsonl, readJsonLines, readRerankJsonl, readSeq2SeqJsonl } from '../data/records.ts';
import type { HfTokenizer } from '../io/hf.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { loadModel, peftBaseModelName, type LoadedModel, type TextTokenizer } from '../models/load.ts';
import type { BaseDtype, BaseQuantization } from '../quant/base_dtype.ts';
import { BertModel } from '../models/bert.ts';
import { saveTrainedAdapter, type SaveAs } from '../peft/save_trained.ts';
import { startFromAdapter, type StartFromAdapter } from './from_adapter.ts';
import type { KeptPeftConfig } from '../peft/adapter_files.ts';
import { projectionMatrices, saveFullModel } from './full.ts';
import { Rng } from '../util/rng.ts';
import { Trainer, type EvalInfo, type FitOptions, type StepInfo } from '../train/loop.ts';
import type { NormPeak } from '../train/norm_monitor.ts';
import { writeNormsPlot } from '../train/norm_plot.ts';
import type { TaskKind, TrainTask } from '../train/task.ts';
import type { OptimizerSpec } from '../train/optimizers.ts';
import { CausalLmTask, encodeCausalLm } from '../train/tasks/causal_lm.ts';
import { EmbedTask, type EmbedExample } from '../train/tasks/embed.ts';
import { RerankTask, type RankLoss, type RerankExample } from '../train/tasks/rerank.ts';
import { Seq2SeqTask, type Seq2SeqExample } from '../train/tasks/seq2seq.ts';
import { AlignTask, type AlignExample } from '../train/tasks/align.ts';
import { MaskedLmTask } from '../train/tasks/mlm.ts';
import { yesNoPromptIds, yesNoTokens } from '../train/tasks/yes_no.ts';
import { GrpoTask, type RewardFn } from '../train/tasks/grpo.ts';
import { loadReward, readGrpoPrompts } from './grpo_data.ts';
import { padBatch as padServeBatch, PeftModel } from '../serve/peft_model.ts';

/** Progress of a job (the CLI's progress bar; tests pass a silent one). */
export interface JobUi {
  info(msg: string): void;
  startPhase(name: string, total: number): void;
  /** Progress of a phase that is not training steps (embedding a data set): `n` more items done. */
  advance?(n: number): void;
  step(s: StepInfo): void;
  eval(e: EvalInfo): void;
  endPhase(): void;
}

/** The process's peak resident set size so far, in bytes. */
export function peakRss(): number {
  return process.resourceUsage().maxRSS * 1024;
}

/** `--monitor-norms`: the plot of the run's norm records and a line on the peak; returns the plot's path (undefined when nothing was monitored). */
export function normsReport(outDir: string, peak: NormPeak | undefined, ui: JobUi): string | undefined {
  if (!peak) {
    ui.info('norm monitor: the model has no attention projection it recognizes (q_proj/k_proj/v_proj, query/key/value, c_attn, qkv): nothing to plot');
    return undefined;
  }
  const plot = writeNormsPlot(outDir);
  ui.info(`norm monitor: largest Γ/√(ln L) ${peak.ratio.toFixed(3)} (Γ = ${peak.gamma.toFixed(3)}) in ${peak.layer} at step ${peak.step}; plot: ${plot}`);
  return plot;
}

/** --full trains the weights themselves: there is no frozen base to quantize. */
export function checkBaseDtype(dtype: BaseDtype | undefined, full: boolean): void {
  if (full && dtype && dtype !== 'fp32') throw new Error(`--base-dtype ${dtype} quantizes the frozen base an adapter trains on; --full trains every weight (use fp32)`);
}

/** One line on what --base-dtype quantized. */
export function describeQuantization(q: BaseQuantization): string {
  return `base weights ${q.dtype}: ${q.quantized.length} linear weights, ${(q.fp32Bytes / 2 ** 20).toFixed(1)} MiB as fp32 → ${(q.storedBytes / 2 ** 20).toFixed(1)} MiB (${(q.storedBytes / q.fp32Bytes).toFixed(3)}×)`;
}

export const silentUi: JobUi = { info() {}, startPhase() {}, step() {}, eval() {}, endPhase() {} };

/** The module names the bundled encoder adapts by default (its attention and FFN projections). */
export { USE_DEFAULT_TARGETS };

export interface TrainJobOptions {
  task: Exclude<TaskKind, 'classification'>;
  /** 'use' or a Hugging Face folder. */
  model: string;
  /** The form of the frozen base's linear weights (src/quant/): default fp32. */
  baseDtype?: BaseDtype;
  /** JSONL training data (the task's format, src/data/records.ts). */
  data: string;
  /** JSONL validation data (same format): evaluated every epoch; early stopping and the best weights follow it. */
  validation?: string;
  method: string;
  methodConfig: Record<string, unknown>;
  /** Default: the bundled encoder's attention and FFN projections; 'all-linear' for Hugging Face folders. */
  targetModules?: TargetModules;
  epochs: number;
  lr: number;
  batchSize: number;
  seed: number;
  out: string;
  maxTrain?: number;
  /** Token budget of a sequence (the source, for seq2seq). */
  maxLen?: number;
  /** seq2seq: token budget of a target. */
  maxTargetLen?: number;
  threads?: number;
  resume?: boolean;
  patience?: number;
  weightDecay?: number;
  warmupRatio?: number;
  schedule?: FitOptions['schedule'];
  maxGradNorm?: number;
  checkpointEvery?: number;
  /** Memory savers (FitOptions.gradCheckpoint, FitOptions.prepackWeights). */
  gradCheckpoint?: boolean;
  prepackWeights?: boolean;
  loraplusLrRatio?: number;
  /** Learning-rate multiplier of a task head (rerank's score head). */
  headLrScale?: number;
  /** rerank: 'listwise' (default), 'pairwise' or 'pointwise'. */
  rankLoss?: RankLoss;
  /** embed: the similarity scale (1/temperature, default 20). */
  embedScale?: number;
  /** The update rule (default AdamW). */
  optimizer?: OptimizerSpec;
  /** Full fine-tuning: every weight of the model trains (no adapter); the model is written to <out>/model. */
  full?: boolean;
  /** Stop after this many steps in this process (tests simulate a crash with it). */
  stopAfterSteps?: number;
  /** Steps between the norm monitor's records in metrics.jsonl (default 10; every run is monitored). */
  normsEvery?: number;
  /** Also plot the monitor's records: <out>/norms.svg. */
  monitorNorms?: boolean;
  /** grpo: 'rank-r1' or a reward module (src/tasks/grpo_data.ts). */
  reward?: string;
  /** grpo: completions per prompt G (default 8, Rank-R1's). */
  numGenerations?: number;
  /** grpo: sampling temperature (default 1). */
  temperature?: number;
  /** grpo: longest completion in tokens (default 128). */
  maxNewTokens?: number;
  /** grpo: KL coefficient β (default 0.04). */
  beta?: number;
  /** grpo: clipping range ε (default 0.2). */
  epsilon?: number;
  /** 'lora': the plain LoRA the adapter amounts to (default for methods that prune: AdapterMethod.savesAsLora); 'native': the method's own folder. */
  saveAs?: SaveAs;
  /** Start from this saved adapter folder (its config, its weights; a fresh optimizer) instead of a fresh init. */
  fromAdapter?: StartFromAdapter;
}

export interface TrainJobResult {
  task: TaskKind;
  method: string;
  model: string;
  examples: { train: number; validation: number };
  trainableParams: number;
  steps: number;
  /** Mean training loss of every epoch. */
  epochLosses: number[];
  /** The task's metrics on the validation data with the final (best) weights. */
  validation?: Record<string, number>;
  /** The adapter folder (<out>/adapter), or with full fine-tuning the model folder (<out>/model). */
  adapterDir: string;
  /** The format of adapterDir, the LoRA form's ranks per module and its parameters (methods that prune). */
  saved?: { saveAs: SaveAs; nativeDir?: string; ranks?: Record<string, number>; adapterParams: number };
  seconds: number;
  stopped: boolean;
  /** grpo: the mean reward of each epoch's sampled completions. */
  meanRewardPerEpoch?: number[];
  /** 'adapter' or 'full'. */
  fineTuning: 'adapter' | 'full';
  /** The frozen base's form when not fp32 (--base-dtype). */
  baseDtype?: BaseDtype;
  optimizer: string;
  /** Bytes of the optimizer's state (moments, projectors) at the end. */
  optimizerStateBytes: number;
  /** --grad-checkpoint: the segments (transformer sublayers) the training graph recomputed in its backward pass. */
  gradCheckpoint?: { recomputedSegments: number };
  /** false with --low-memory (onnxruntime kept no prepacked weights). */
  prepackWeights?: false;
  /** The process's peak resident memory, in bytes. */
  peakRssBytes: number;
  /** The norm monitor's largest Γ/√(ln L) over the run (absent when the model has no attention projection it recognizes). */
  normsPeak?: NormPeak;
  /** With monitorNorms: the plot of the monitor's records. */
  normsPlot?: string;
}

/** mlm: JSONL {"text"} lines. */
function readTextJsonl(file: string): string[] {
  return readJsonLines(file, '{"text": "..."}', (o) => (typeof o?.text === 'string' && o.text.trim() ? { text: o.text as string } : 'expected a non-empty "text" string')).map((r) => r.text);
}

const FAMILY: Record<TrainJobOptions['task'], LoadedModel['kind']> = { 'causal-lm': 'decoder', grpo: 'decoder', seq2seq: 'seq2seq', rerank: 'encoder', embed: 'encoder', align: 'encoder', mlm: 'encoder' };
const FAMILY_NAMES = { encoder: 'an encoder (the bundled USE model, or a BERT / RoBERTa / DistilBERT folder)', decoder: 'a decoder folder (GPT-2, Llama, Qwen2, Mistral)', seq2seq: 'an encoder-decoder folder (T5, BART)' };

/** The task's model family, or an error that says which models the task takes. */
function requireFamily(task: TrainJobOptions['task'], m: LoadedModel, spec: string): void {
  if (task === 'rerank' && m.kind !== 'encoder') return; // a decoder / T5 / BART folder: the yes/no reranker
  const want = FAMILY[task];
  const wanted = task === 'mlm' ? 'a BERT folder saved with its masked-LM head (BertForMaskedLM)' : FAMILY_NAMES[want];
  if (m.kind !== want) throw new Error(`--task ${task} trains ${wanted}; '${spec}' is ${FAMILY_NAMES[m.kind]}`);
}

function hfTokenizer(m: LoadedModel, spec: string): HfTokenizer {
  if (!m.tokenizer || !('decode' in m.tokenizer)) throw new Error(`${path.join(spec, 'tokenizer.json')}: not found; the task encodes text with the folder's own tokenizer`);
  return m.tokenizer as HfTokenizer;
}

function textTokenizer(m: LoadedModel, spec: string): TextTokenizer {
  if (!m.tokenizer) throw new Error(`${path.join(spec, 'tokenizer.json')}: not found; the task encodes text with the folder's own tokenizer`);
  return m.tokenizer;
}

/**
 * A (query, document) pair as one sequence: the tokenizer's pair form where it
 * has one (BERT: [CLS] q [SEP] d [SEP] with token_type_ids 0…0 1…1), else the
 * query's tokens then the document's (types all 0).
 */
export function pairEncoder(tok: TextTokenizer, maxLen: number): (q: string, d: string) => { ids: number[]; types: number[] } {
  const pair = (tok as Partial<HfTokenizer>).encodePair;
  if (pair) {
    return (q, d) => {
      const e = pair.call(tok, q, d);
      return { ids: e.ids.slice(0, maxLen), types: e.tokenTypeIds.slice(0, maxLen) };
    };
  }
  // One text: the query keeps at most half the budget (long queries would crowd the document out), the document fills the rest.
  return (q, d) => {
    const qi = tok.encode(q).slice(0, Math.max(1, Math.floor(maxLen / 2)));
    const ids = [...qi, ...tok.encode(d).slice(0, Math.max(0, maxLen - qi.length))];
    return { ids, types: ids.map(() => 0) };
  };
}

/** One query's candidates as a RerankExample (labels as given). */
export function rerankExample(pair: (q: string, d: string) => { ids: number[]; types: number[] }, query: string, documents: readonly string[], labels: readonly number[]): RerankExample {
  const enc = documents.map((d) => pair(query, d));
  return { pairs: enc.map((e) => e.ids), types: enc.map((e) => e.types), labels: [...labels] };
}

interface Prepared {
  task: TrainTask<any, any>;
  train: unknown[];
  validation?: unknown[];
  extra: Record<string, unknown>;
}

/** align: the frozen base model's unit embeddings of the target sentences (the teacher), computed once. */
async function teacherTargets(m: LoadedModel, texts: string[], maxLen: number, threads?: number): Promise<Float32Array[]> {
  if (m.kind !== 'encoder' || !m.tokenizer) throw new Error('unreachable');
  const pm = new PeftModel(m.model, { threads });
  try {
    const out: Float32Array[] = new Array(texts.length);
    const ids = texts.map((t) => m.tokenizer!.encode(t).slice(0, maxLen));
    for (let s = 0; s < ids.length; s += 64) {
      const r = await pm.run(padServeBatch(ids.slice(s, s + 64).map((x) => (x.length ? x : [0]))));
      const H = r.dims[1], d = r.data as Float32Array;
      for (let i = 0; i < r.dims[0]; i++) {
        const v = d.slice(i * H, (i + 1) * H);
        const n = Math.sqrt(v.reduce((a, x) => a + x * x, 0)) || 1;
        out[s + i] = v.map((x) => x / n);
      }
    }
    return out;
  } finally {
    await pm.release();
  }
}

/**
 * rerank on a decoder or T5 / BART folder: every (query, document) pair of the
 * data becomes llm-rankers' yes/no prompt with the answer 'Yes' (label > 0) or
 * 'No' as its only target token (src/train/tasks/yes_no.ts).
 */
function prepareYesNo(o: TrainJobOptions, m: Exclude<LoadedModel, { kind: 'encoder' }>): Prepared {
  if (o.rankLoss) throw new Error(`--loss ${o.rankLoss}: on a decoder or T5 / BART folder the rerank task trains the yes/no answer token (a pointwise cross-entropy); --loss applies to encoder cross-encoders`);
  const tok = hfTokenizer(m, o.model);
  const { yes, no } = yesNoTokens(tok, o.model);
  const maxLen = o.maxLen ?? 128;
  const maxPositions = m.kind === 'decoder' ? m.model.config.maxPositions : undefined;
  const pairs = (file: string) => readRerankJsonl(file).flatMap((r) => r.documents.map((d, i) => ({ ids: yesNoPromptIds(tok, r.query, d, { maxLen, maxPositions }), answer: r.labels[i] > 0 ? yes : no })));
  const cap = <T>(xs: T[]) => (o.maxTrain !== undefined ? xs.slice(0, o.maxTrain) : xs);
  const extra = { max_length: maxLen, reranker: 'yes/no (llm-rankers pointwise prompt, P(yes))' };
  if (m.kind === 'decoder') {
    const enc = (file: string) => pairs(file).map((p) => ({ ids: [...p.ids, p.answer], promptLength: p.ids.length }));
    return { task: new CausalLmTask(m.model, { padId: tok.padTokenId ?? tok.eosTokenId ?? 0 }), train: cap(enc(o.data)), validation: o.validation ? enc(o.validation) : undefined, extra };
  }
  const enc = (file: string): Seq2SeqExample[] => pairs(file).map((p) => ({ src: p.ids, tgt: [p.answer] }));
  return { task: new Seq2SeqTask(m.model), train: cap(enc(o.data)), validation: o.validation ? enc(o.validation) : undefined, extra };
}

function prepare(o: TrainJobOptions, m: LoadedModel, teacher?: Map<string, Float32Array[]>, reward?: RewardFn): Prepared {
  const cap = <T>(xs: T[]) => (o.maxTrain !== undefined ? xs.slice(0, o.maxTrain) : xs);
  const encoderMax = m.model instanceof BertModel ? m.model.maxSequenceLength : 128;
  switch (o.task) {
    case 'causal-lm': {
      if (m.kind !== 'decoder') throw new Error('unreachable');
      const tok = hfTokenizer(m, o.model);
      const maxLen = o.maxLen ?? 256;
      const enc = (file: string) => {
        const ex = encodeCausalLm(readCausalLmJsonl(file), tok, maxLen);
        if (!ex.length) throw new Error(`${file}: no example has a completion token left after truncation to ${maxLen} tokens`);
        return ex;
      };
      return { task: new CausalLmTask(m.model, { padId: tok.padTokenId ?? tok.eosTokenId ?? 0 }), train: cap(enc(o.data)), validation: o.validation ? enc(o.validation) : undefined, extra: { max_length: maxLen } };
    }
    case 'grpo': {
      if (m.kind !== 'decoder') throw new Error('unreachable');
      if (o.validation) throw new Error('--task grpo has no validation pass (its figure is the mean reward of each step, in metrics.jsonl): leave out --validation');
      if (o.full) throw new Error('--task grpo trains an adapter: its reference policy is the model with the adapter disabled. Leave out --full');
      const tok = hfTokenizer(m, o.model);
      const maxNewTokens = o.maxNewTokens ?? 128, maxLen = o.maxLen ?? 128;
      const spec = o.reward ?? 'rank-r1';
      const prompts = readGrpoPrompts(o.data, tok, { reward: spec, maxLen, maxPositions: m.model.config.maxPositions, maxNewTokens });
      const task = new GrpoTask(m.model, {
        numGenerations: o.numGenerations ?? 8, temperature: o.temperature ?? 1, maxNewTokens, beta: o.beta ?? 0.04, epsilon: o.epsilon ?? 0.2,
        padId: tok.padTokenId ?? tok.eosTokenId ?? 0, decode: (ids) => tok.decode(ids, { skipSpecialTokens: true }), reward: reward!, threads: o.threads,
      });
      const extra = { reward: spec, num_generations: task.o.numGenerations, temperature: task.o.temperature, max_new_tokens: maxNewTokens, beta: task.o.beta, epsilon: task.o.epsilon, max_length: maxLen };
      return { task, train: cap(prompts), extra };
    }
    case 'seq2seq': {
      if (m.kind !== 'seq2seq') throw new Error('unreachable');
      const tok = hfTokenizer(m, o.model);
      const maxLen = o.maxLen ?? 512, maxTarget = o.maxTargetLen ?? 128;
      const enc = (file: string): Seq2SeqExample[] => readSeq2SeqJsonl(file).map((r) => ({ src: tok.encode(r.source).slice(0, maxLen), tgt: tok.encode(r.target).slice(0, maxTarget) }));
      return { task: new Seq2SeqTask(m.model), train: cap(enc(o.data)), validation: o.validation ? enc(o.validation) : undefined, extra: { max_length: maxLen, max_target_length: maxTarget } };
    }
    case 'rerank': {
      if (m.kind !== 'encoder') return prepareYesNo(o, m);
      const maxLen = Math.min(o.maxLen ?? 128, encoderMax);
      const pair = pairEncoder(textTokenizer(m, o.model), maxLen);
      const enc = (file: string): RerankExample[] => readRerankJsonl(file).map((r) => rerankExample(pair, r.query, r.documents, r.labels));
      const task = new RerankTask(m.model, { seed: o.seed, loss: o.rankLoss, headLrScale: o.headLrScale });
      return { task, train: cap(enc(o.data)), validation: o.validation ? enc(o.validation) : undefined, extra: { max_length: maxLen, rank_loss: o.rankLoss ?? 'listwise' } };
    }
    case 'embed': {
      if (m.kind !== 'encoder') throw new Error('unreachable');
      const maxLen = Math.min(o.maxLen ?? 128, encoderMax);
      const tok = textTokenizer(m, o.model);
      const enc = (file: string): EmbedExample[] => readEmbedJsonl(file).map((r) => ({ anchor: tok.encode(r.anchor).slice(0, maxLen), positive: tok.encode(r.positive).slice(0, maxLen) }));
      return { task: new EmbedTask(m.model, { scale: o.embedScale }), train: cap(enc(o.data)), validation: o.validation ? enc(o.validation) : undefined, extra: { max_length: maxLen, scale: o.embedScale ?? 20 } };
    }
    case 'mlm': {
      if (m.kind !== 'encoder') throw new Error('unreachable');
      if (!(m.model instanceof BertModel)) throw new Error(`--task mlm trains a BERT folder with its masked-LM head; '${o.model}' is the bundled sentence encoder, which has none (train its language adapter with --task align)`);
      const tok = hfTokenizer(m, o.model);
      const maxLen = Math.min(o.maxLen ?? 128, encoderMax);
      const tid = (t: string): number | undefined => tok.tokenizer.token_to_id(t) ?? undefined;
      const maskId = tid('[MASK]') ?? tid('<mask>');
      if (maskId === undefined) throw new Error(`${o.model}/tokenizer.json: no [MASK] token`);
      const specials = [tok.padTokenId, tok.bosTokenId, tok.eosTokenId, tid('[CLS]'), tid('[SEP]'), tid('<s>'), tid('</s>')].filter((x): x is number => x !== undefined);
      const enc = (file: string) => readTextJsonl(file).map((t) => tok.encode(t).slice(0, maxLen));
      const task = new MaskedLmTask(m.model, { maskId, specialIds: specials, vocabSize: m.model.config.vocab, seed: o.seed });
      return { task, train: cap(enc(o.data)), validation: o.validation ? enc(o.validation) : undefined, extra: { max_length: maxLen, mlm_probability: 0.15 } };
    }
    case 'align': {
      if (m.kind !== 'encoder') throw new Error('unreachable');
      const maxLen = Math.min(o.maxLen ?? 128, encoderMax);
      const tok = textTokenizer(m, o.model);
      const enc = (file: string): AlignExample[] => readSeq2SeqJsonl(file).map((r, i) => ({ ids: tok.encode(r.source).slice(0, maxLen), target: teacher!.get(file)![i] }));
      return { task: new AlignTask(m.model), train: cap(enc(o.data)), validation: o.validation ? enc(o.validation) : undefined, extra: { max_length: maxLen, teacher: 'the base model\'s embedding of "target"' } };
    }
  }
}

export async function runTrainJob(o: TrainJobOptions, ui: JobUi = silentUi): Promise<TrainJobResult> {
  const t0 = performance.now();
  checkBaseDtype(o.baseDtype, !!o.full);
  const loaded = await loadModel(o.model, undefined, { baseDtype: o.baseDtype });
  requireFamily(o.task, loaded, o.model);
  if (loaded.quantization) ui.info(describeQuantization(loaded.quantization));
  let teacher: Map<string, Float32Array[]> | undefined;
  if (o.task === 'align') {
    teacher = new Map();
    for (const f of [o.data, o.validation].filter((x): x is string => !!x)) teacher.set(f, await teacherTargets(loaded, readSeq2SeqJsonl(f).map((r) => r.target), Math.min(o.maxLen ?? 128, 128), o.threads));
  }
  const reward = o.task === 'grpo' ? await loadReward(o.reward ?? 'rank-r1') : undefined;
  const { task, train, validation, extra } = prepare(o, loaded, teacher, reward);
  ui.info(`data: ${o.data} — ${train.length} training${validation ? ` / ${validation.length} validation` : ''} examples (${o.task})`);
  const model = loaded.model;
  const headNames = 'headNames' in model ? model.headNames : undefined;
  let adapters: AdapterSet | null = null;
  let keptConfig: KeptPeftConfig | undefined;
  if (o.fromAdapter) {
    if (o.full) throw new Error('--from-adapter continues an adapter; --full trains the weights themselves: give one of them');
    const start = startFromAdapter(model, o.fromAdapter, { headNames, taskParams: task.params, warn: (m) => ui.info(m) });
    adapters = start.set;
    keptConfig = start.peft;
    ui.info(`from adapter ${o.fromAdapter.dir}: ${start.set.method.name} (its config and weights${start.headLoaded.length ? `, task head ${start.headLoaded.join(', ')}` : ''}); the optimizer starts fresh`);
    if (start.headMissing.length) ui.info(`${o.fromAdapter.dir} holds no ${start.headMissing.join(', ')}: the task's head starts from its fresh init`);
  } else if (!o.full) {
    const m = getMethod(o.method);
    const targetModules = o.targetModules ?? (loaded.dir ? 'all-linear' : USE_DEFAULT_TARGETS);
    adapters = new AdapterSet(m, m.schema.parse(o.methodConfig), model.sites, model.weights, { targetModules, headNames, seed: o.seed });
  }
  const method = adapters?.method ?? getMethod(o.method);
  fs.mkdirSync(o.out, { recursive: true });
  const rewards: number[][] = [];
  const trainer = new Trainer(task, adapters, {
    epochs: o.epochs, lr: o.lr, batchSize: o.batchSize, seed: o.seed, threads: o.threads, outDir: o.out, resume: o.resume, patience: o.patience,
    weightDecay: o.weightDecay, warmupRatio: o.warmupRatio, schedule: o.schedule, maxGradNorm: o.maxGradNorm ?? 1.0,
    gradCheckpoint: o.gradCheckpoint, prepackWeights: o.prepackWeights,
    checkpointEvery: o.checkpointEvery ?? 50, stopAfterSteps: o.stopAfterSteps, optimizer: o.optimizer, monitorNorms: { every: o.normsEvery ?? 10 }, adapterLoaded: !!o.fromAdapter,
    optimizerGroups: o.loraplusLrRatio !== undefined ? loraPlusGroups(o.loraplusLrRatio) : undefined,
    full: o.full ? { weights: model.weights, matrices: projectionMatrices(model) } : undefined,
    onStep: (s) => {
      if (s.task?.reward !== undefined) (rewards[s.epoch] ??= []).push(s.task.reward);
      ui.step(s);
    },
    onEval: (e) => ui.eval(e),
  });
  const trainable = [...trainer.params().values()].reduce((s, t) => s + t.length, 0);
  if (adapters) ui.info(`${method.name}: ${adapters.targets.length} modules (${adapters.targets.map((s) => s.name).join(', ')}), ${trainable} trainable parameters`);
  else ui.info(`full fine-tuning: every weight of the model trains, ${trainable} parameters`);
  try {
    const stepsPerEpoch = task.batches(train, o.batchSize, new Rng(o.seed).fork('epoch-0')).length;
    ui.startPhase(`train ${method.name}`, stepsPerEpoch * o.epochs);
    const fit = await trainer.fit({ train, validation });
    ui.endPhase();
    const adapterDir = path.join(o.out, adapters ? 'adapter' : 'model');
    const result: TrainJobResult = {
      task: o.task, method: method.name, model: loaded.name, examples: { train: train.length, validation: validation?.length ?? 0 },
      trainableParams: trainable, steps: fit.steps, epochLosses: fit.epochLosses, adapterDir, seconds: 0, stopped: fit.stopped,
      ...(loaded.quantization && { baseDtype: loaded.quantization.dtype }),
      fineTuning: adapters ? 'adapter' : 'full', optimizer: o.optimizer?.kind ?? 'adamw', optimizerStateBytes: fit.optimizerStateBytes, peakRssBytes: peakRss(),
      normsPeak: fit.normsPeak,
      ...(o.gradCheckpoint && { gradCheckpoint: { recomputedSegments: fit.recomputedSegments ?? 0 } }),
      ...(o.prepackWeights === false && { prepackWeights: false }),
    };
    if (o.task === 'grpo') result.meanRewardPerEpoch = rewards.filter(Boolean).map((r) => r.reduce((a, b) => a + b, 0) / r.length);
    if (fit.stopped) return { ...result, seconds: (performance.now() - t0) / 1000 };
    if (validation) result.validation = await trainer.evaluate(validation);
    if (adapters) {
      const saved = saveTrainedAdapter(adapterDir, adapters, {
        baseModel: peftBaseModelName(loaded),
        taskType: task.peftTaskType,
        modulesToSave: task.params.size ? new Map([...task.params].map(([k, t]) => [k, { shape: t.shape, data: t.data }])) : undefined,
        extra: { task: o.task, data: o.data, ...extra, ...(loaded.dir && { base_model_dir: path.resolve(loaded.dir) }), ...(o.fromAdapter && { from_adapter: path.resolve(o.fromAdapter.dir) }), ...(loaded.quantization && { base_dtype: loaded.quantization.dtype }) },
        peftConfig: keptConfig,
      }, o.saveAs);
      const { dir: _dir, ...savedInfo } = saved;
      result.saved = savedInfo;
    } else saveFullModel(adapterDir, loaded, task.params, { task: o.task, data: o.data, ...extra });
    if (o.monitorNorms) result.normsPlot = normsReport(o.out, fit.normsPeak, ui);
    result.seconds = (performance.now() - t0) / 1000;
    result.peakRssBytes = peakRss();
    writeFileAtomic(path.join(o.out, 'results.json'), JSON.stringify(result, null, 2) + '\n');
    return result;
  } finally {
    await trainer.release();
  }
}
