// `lorakit unlearn`: LoKU knowledge unlearning (Cha et al., ICLR 2025) of a
// decoder folder: a LoRA trained with the inverted hinge loss on the forget
// set and NLL on the retain set (src/workflows/loku/task.ts), initialized by
// FILA (src/workflows/loku/fila.ts) or as a plain LoRA; gradient ascent and
// gradient difference as baselines. Writes
//
//   <out>/adapter/       a plain PEFT LoRA for the original model (with FILA, the
//                        residual init converted as PEFT converts PiSSA:
//                        [A; A0], [B, −B0], r×2, α×2, so it applies to the unchanged W)
//   <out>/model/         with --merge: the unlearned model folder (W_base + s·B·A)
//   <out>/results.json   forget / retain metrics before and after, the settings
//   <out>/metrics.jsonl, <out>/checkpoints/ (--resume continues; FILA is recomputed
//                        from the same data and seed, then the checkpoint is loaded)
//
// Defaults follow the official scripts (run_forget.sh / forget.yaml): rank
// 32 → here 8 (small models), α = 2r, dropout 0, every linear layer but the
// output head, lr 2e-4, 5 epochs, AdamW with weight decay 0.01, linear decay
// after a warmup of one epoch; importance batches of 4 (run_measure_importance.sh).

import fs from 'node:fs';
import path from 'node:path';
import { AdapterSet, fromOutIn, PEFT_PREFIX, toOutIn } from '../../adapters/inject.ts';
import { getMethod } from '../../adapters/registry.ts';
import { loraScaling } from '../../adapters/lora/config.ts';
import type { TargetModules } from '../../adapters/targets.ts';
import { readCausalLmJsonl } from '../../data/records.ts';
import type { HfTokenizer } from '../../io/hf.ts';
import { writeFileAtomic } from '../../io/atomic.ts';
import { loadModel } from '../../models/load.ts';
import type { DecoderModel } from '../../models/decoder.ts';
import { saveAdapter } from '../../peft/adapter_files.ts';
import { saveMergedHfFolder } from '../../peft/export.ts';
import { Trainer, type StepInfo } from '../../train/loop.ts';
import { encodeCausalLm, type CausalLmExample } from '../../train/tasks/causal_lm.ts';
import { Rng } from '../../util/rng.ts';
import { silentUi, peakRss, type JobUi } from '../../tasks/train.ts';
import { knowledgeMetrics, type KnowledgeMetrics } from './evaluate.ts';
import { filaInit, measureImportance } from './fila.ts';
import { UnlearnTask, type UnlearnLoss } from './task.ts';

export type UnlearnInit = 'fila' | 'lora';

export interface UnlearnOptions {
  /** A decoder folder (GPT-2, Llama, Qwen2, Mistral). */
  model: string;
  /** JSONL of what to forget / keep ({"prompt","completion"} facts, {"text"}, {"messages"}). */
  forget: string;
  retain: string;
  out: string;
  init?: UnlearnInit;
  loss?: UnlearnLoss;
  rank?: number;
  /** Default 2·rank (the official scripts). */
  alpha?: number;
  targetModules?: TargetModules;
  epochs?: number;
  lr?: number;
  batchSize?: number;
  weightDecay?: number;
  /** Warmup over this fraction of the steps (default: one epoch's worth, as the official warmup_steps = steps_per_epoch). */
  warmupRatio?: number;
  maxGradNorm?: number;
  /** FILA importance: examples per forget / retain batch (default 4). */
  importanceBatch?: number;
  maxLen?: number;
  seed?: number;
  threads?: number;
  resume?: boolean;
  /** Also write the unlearned model folder (<out>/model). */
  merge?: boolean;
  checkpointEvery?: number;
  /** Stop after this many steps (tests simulate a crash). */
  stopAfterSteps?: number;
  /** Library use: the model and the encoded data instead of folders and files. */
  loaded?: { model: DecoderModel; padId: number; forget: CausalLmExample[]; retain: CausalLmExample[]; name: string };
}

export interface UnlearnResult {
  loss: UnlearnLoss;
  init: UnlearnInit;
  before: { forget: KnowledgeMetrics; retain: KnowledgeMetrics };
  after?: { forget: KnowledgeMetrics; retain: KnowledgeMetrics };
  steps: number;
  epochLosses: number[];
  trainableParams: number;
  adapterDir?: string;
  modelDir?: string;
  seconds: number;
  stopped: boolean;
  peakRssBytes: number;
  settings: Record<string, unknown>;
}

function encode(file: string, tok: HfTokenizer, maxLen: number): CausalLmExample[] {
  const ex = encodeCausalLm(readCausalLmJsonl(file), tok, maxLen);
  if (!ex.length) throw new Error(`${file}: no example with a completion token left after truncation to ${maxLen} tokens`);
  return ex;
}

export async function runUnlearn(o: UnlearnOptions, ui: JobUi = silentUi): Promise<UnlearnResult> {
  const t0 = performance.now();
  const init = o.init ?? 'fila', lossKind = o.loss ?? 'ihl';
  const r = o.rank ?? 8, alpha = o.alpha ?? 2 * r, seed = o.seed ?? 42, epochs = o.epochs ?? 5, bs = o.batchSize ?? 4;
  if (init === 'fila' && lossKind === 'ga') throw new Error("FILA weighs the weights by their forget/retain Fisher ratio, which needs the retain set: use it with --loss ihl or gd (gradient ascent 'ga' has no retain term)");
  let model: DecoderModel, padId: number, forget: CausalLmExample[], retain: CausalLmExample[], name: string, folder;
  if (o.loaded) ({ model, padId, forget, retain, name } = o.loaded);
  else {
    const loaded = await loadModel(o.model);
    if (loaded.kind !== 'decoder') throw new Error(`unlearn: '${o.model}' is not a decoder folder (GPT-2, Llama, Qwen2, Mistral)`);
    if (!loaded.tokenizer || !('decode' in loaded.tokenizer)) throw new Error(`${path.join(o.model, 'tokenizer.json')}: not found; the facts are encoded with the folder's own tokenizer`);
    const tok = loaded.tokenizer as HfTokenizer;
    model = loaded.model;
    padId = tok.padTokenId ?? tok.eosTokenId ?? 0;
    const maxLen = o.maxLen ?? 256;
    forget = encode(o.forget, tok, maxLen);
    retain = encode(o.retain, tok, maxLen);
    name = loaded.name;
    folder = loaded.folder;
  }
  ui.info(`unlearn: ${forget.length} forget / ${retain.length} retain examples; loss ${lossKind}, init ${init}, LoRA r ${r}, α ${alpha}`);
  const before = {
    forget: await knowledgeMetrics(model, null, forget, { padId, threads: o.threads }),
    retain: await knowledgeMetrics(model, null, retain, { padId, threads: o.threads }),
  };
  ui.info(`before: forget NLL ${before.forget.nll.toFixed(3)} / exact ${(100 * before.forget.exact_match).toFixed(1)}%, retain NLL ${before.retain.nll.toFixed(3)} / exact ${(100 * before.retain.exact_match).toFixed(1)}%`);

  const lora = getMethod('lora');
  const config = lora.schema.parse({ r, lora_alpha: alpha, lora_dropout: 0 });
  const adapters = new AdapterSet(lora, config, model.sites, model.weights, { targetModules: o.targetModules ?? 'all-linear', headNames: model.headNames, seed });
  if (init === 'fila') {
    // measure_importance.py: forget batches in a seeded order, each with drawn retain partners.
    const ib = o.importanceBatch ?? 4;
    const rng = new Rng(seed).fork('fila-importance');
    const order = rng.fork('order').permutation(forget.length), draw = rng.fork('retain');
    const pairs: { forget: CausalLmExample[]; retain: CausalLmExample[] }[] = [];
    for (let s = 0; s < order.length; s += ib) {
      const idx = order.slice(s, s + ib);
      pairs.push({ forget: idx.map((i) => forget[i]), retain: idx.map((i) => retain[(i + draw.int(retain.length)) % retain.length]) });
    }
    ui.startPhase('FILA importance', 2 * pairs.length);
    const sums = await measureImportance(model, adapters.targets, pairs, { padId, threads: o.threads, onBatch: () => ui.advance?.(1) });
    ui.endPhase();
    const s = loraScaling(config);
    for (const site of adapters.targets) {
      const w = model.weights.get(site.weightKey)!;
      const Wout = toOutIn(site, w.data);
      const f = filaInit(Wout, site.outFeatures, site.inFeatures, sums.forget.get(site.name)!, sums.retain.get(site.name)!, sums.forgetCount, sums.retainCount, r, s);
      const keyA = `${PEFT_PREFIX}${site.name}.lora_A.weight`, keyB = `${PEFT_PREFIX}${site.name}.lora_B.weight`;
      adapters.params.get(keyA)!.set(f.A);
      adapters.params.get(keyB)!.set(f.B);
      adapters.initialParams.set(keyA, Float32Array.from(f.A));
      adapters.initialParams.set(keyB, Float32Array.from(f.B));
      adapters.baseOverrides.set(site.weightKey, fromOutIn(site, f.residual));
    }
    ui.info(`FILA: ${adapters.targets.length} modules initialized from the forget/retain Fisher ratio (${sums.forgetCount} forget, ${sums.retainCount} retain tokens)`);
  }
  const task = new UnlearnTask(model, retain, { loss: lossKind, padId });
  fs.mkdirSync(o.out, { recursive: true });
  const trainer = new Trainer(task, adapters, {
    epochs, lr: o.lr ?? 2e-4, batchSize: bs, seed, threads: o.threads, outDir: o.out, resume: o.resume,
    weightDecay: o.weightDecay ?? 0.01, warmupRatio: o.warmupRatio ?? 1 / epochs, schedule: 'linear', maxGradNorm: o.maxGradNorm,
    checkpointEvery: o.checkpointEvery ?? 50, stopAfterSteps: o.stopAfterSteps, monitorNorms: { every: 10 },
    onStep: (st: StepInfo) => ui.step(st),
  });
  const settings = { model: o.loaded ? name : path.resolve(o.model), forget: o.loaded ? null : path.resolve(o.forget), retain: o.loaded ? null : path.resolve(o.retain), loss: lossKind, init, r, lora_alpha: alpha, epochs, lr: o.lr ?? 2e-4, batch_size: bs, seed, importance_batch: o.importanceBatch ?? 4 };
  try {
    ui.startPhase(`unlearn ${lossKind}${init === 'fila' ? '+FILA' : ''}`, Math.ceil(forget.length / bs) * epochs);
    const fit = await trainer.fit({ train: forget });
    ui.endPhase();
    const result: UnlearnResult = {
      loss: lossKind, init, before, steps: fit.steps, epochLosses: fit.epochLosses, trainableParams: adapters.trainableCount(),
      seconds: 0, stopped: fit.stopped, peakRssBytes: peakRss(), settings,
    };
    if (fit.stopped) return { ...result, seconds: (performance.now() - t0) / 1000 };
    result.after = {
      forget: await knowledgeMetrics(model, adapters, forget, { padId, threads: o.threads }),
      retain: await knowledgeMetrics(model, adapters, retain, { padId, threads: o.threads }),
    };
    ui.info(`after:  forget NLL ${result.after.forget.nll.toFixed(3)} / exact ${(100 * result.after.forget.exact_match).toFixed(1)}%, retain NLL ${result.after.retain.nll.toFixed(3)} / exact ${(100 * result.after.retain.exact_match).toFixed(1)}%`);
    result.adapterDir = path.join(o.out, 'adapter');
    saveAdapter(result.adapterDir, adapters, { baseModel: name, taskType: 'CAUSAL_LM', convertToLora: init === 'fila', extra: { task: 'unlearn', ...settings } });
    if (o.merge) {
      if (!folder) throw new Error('unlearn: --merge writes a model folder and needs the model loaded from one');
      result.modelDir = path.join(o.out, 'model');
      saveMergedHfFolder(result.modelDir, folder, model, adapters.mergeInto(model.weights), { adapters: [result.adapterDir] });
    }
    result.seconds = (performance.now() - t0) / 1000;
    result.peakRssBytes = peakRss();
    writeFileAtomic(path.join(o.out, 'results.json'), JSON.stringify(result, null, 2) + '\n');
    return result;
  } finally {
    await trainer.release();
  }
}
