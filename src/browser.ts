// lorakit's public API in a web page: the same library as 'lorakit' in Node
// (graph, autodiff, adapters, optimizers, the one training loop, PEFT files,
// serving), run by onnxruntime-web instead of onnxruntime-node. Bundlers pick
// this entry for 'lorakit' when they build for browsers (package.json's
// "browser" condition), and swap the three modules that differ
// (src/runtime/ort.ts, src/io/files.ts, src/train/run_folder.ts) for their
// .browser.ts versions. What needs a file system is left out; its
// bytes-in/bytes-out counterparts are here (adapterFiles, loadPeftAdapter
// with files, parseJsonl, fetchUseModel).

// The runtime: onnxruntime-web's WebAssembly (threads when cross-origin isolated) or WebGPU.
export { configureWebRuntime, runtimeInfo, type WebRuntimeOptions, type WebRuntimeInfo } from './runtime/ort.browser.ts';

// Models: the bundled Universal Sentence Encoder lite, fetched from where the page serves its files.
export { fetchUseModel, type FetchUseOptions } from './models/use_fetch.ts';
export { useEncoder, USE_MODEL_NAME, USE_DEFAULT_TARGETS } from './models/use_encoder.ts';
export { USE_MODULE_NAMES } from './models/use.ts';
export { UseTokenizer } from './tokenize/sentencepiece.ts';
export type { EncoderModel, LinearFn, LinearSite, WeightMap } from './models/types.ts';

// Adapters: one AdapterSet per adapter, any method of the registry.
export { AdapterSet, PEFT_PREFIX, type AdapterSetOptions } from './adapters/inject.ts';
export { getMethod, METHODS } from './adapters/registry.ts';
export type { AdapterMethod } from './adapters/types.ts';
export type { TargetModules } from './adapters/targets.ts';

// Training: one loop for every task (in memory: a page has no run folder).
export { fit, Trainer, NonFiniteLossError, type FitOptions, type FitResult, type StepInfo, type EvalInfo } from './train/loop.ts';
export { TASK_KINDS, type TaskKind, type TrainTask, type TaskGraph, type TrainTensor } from './train/task.ts';
export { ClassificationTask, HEAD_B, HEAD_W, type EncodedExample } from './train/tasks/classification.ts';
export { CausalLmTask, encodeCausalLm, makeCausalLmBatch, type CausalLmExample } from './train/tasks/causal_lm.ts';
export { Seq2SeqTask, type Seq2SeqExample } from './train/tasks/seq2seq.ts';
export { RerankTask, type RerankExample } from './train/tasks/rerank.ts';
export { EmbedTask, type EmbedExample } from './train/tasks/embed.ts';
export { ClassificationTrainer } from './train/trainer.ts';
export { trainLinearProbe, probeLogits, accuracy } from './train/linear_probe.ts';

// Labeled text: JSONL parsing with line-numbered errors, the seeded split.
export { parseJsonl, describeLabels, JsonlError, type JsonlDataset } from './data/jsonl.ts';
export { splitExamples, SPLIT_SEED } from './data/split.ts';

// PEFT files as bytes: adapter_config.json + adapter_model.safetensors to download, and to load back.
export { adapterFiles, createPeftAdapter, loadPeftAdapter, readAdapter, type AdapterFiles, type PeftAdapter } from './peft/adapter_files.ts';
export { parseSafetensors, serializeSafetensors } from './io/safetensors.ts';

// Serving: several adapters on one base, generation.
export { PeftModel, padBatch, padDecoderIds, type TokenBatch } from './serve/peft_model.ts';
export { Generator, type GenerateOptions, type GenerateResult } from './serve/generate.ts';
export { Seq2SeqGenerator, type Seq2SeqGenerateOptions } from './serve/seq2seq_generate.ts';

// The engine: graph IR, op builders, reverse-mode autodiff, ONNX Runtime sessions.
export { Graph, Value } from './graph/ir.ts';
export * as op from './graph/ops.ts';
export { grad } from './autodiff/grad.ts';
export { CompiledGraph, runtimeName, type HostTensor, type SessionOptions } from './runtime/session.ts';
