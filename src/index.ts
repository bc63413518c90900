// lorakit's public API: what a TypeScript project that installs lorakit
// imports from 'lorakit'. Load a model, attach an adapter of any method, train
// it on a task with the one loop, save it as PEFT files, and serve it (several
// adapters on one base, generation). The graph engine underneath (IR,
// autodiff, ONNX Runtime sessions) is exported for those who build their own
// graphs.

// Models: 'use' (the bundled Universal Sentence Encoder lite) or a Hugging Face folder.
export { loadModel, type LoadedModel, type LoadOptions, type ModelFamily, type TextTokenizer } from './models/load.ts';
export { quantizeBase, BASE_DTYPES, type BaseDtype, type BaseQuantization } from './quant/base_dtype.ts';
export type { EncoderModel, LinearFn, LinearSite, WeightMap } from './models/types.ts';
export type { DecoderModel } from './models/decoder.ts';
export type { Seq2SeqModel } from './models/seq2seq.ts';
export { HfTokenizer } from './io/hf.ts';

// Adapters: one AdapterSet per adapter, any method of the registry.
export { AdapterSet, PEFT_PREFIX, type AdapterSetOptions } from './adapters/inject.ts';
export { getMethod, METHODS } from './adapters/registry.ts';
export type { AdapterMethod } from './adapters/types.ts';
export type { TargetModules } from './adapters/targets.ts';

// Training: one loop for every task.
export { fit, Trainer, NonFiniteLossError, type FitOptions, type FitResult, type StepInfo, type EvalInfo } from './train/loop.ts';
export { TASK_KINDS, type TaskKind, type TrainTask, type TaskGraph, type TrainTensor } from './train/task.ts';
export { ClassificationTask, HEAD_B, HEAD_W, type EncodedExample } from './train/tasks/classification.ts';
export { CausalLmTask, encodeCausalLm, makeCausalLmBatch, type CausalLmExample } from './train/tasks/causal_lm.ts';
export { Seq2SeqTask, type Seq2SeqExample } from './train/tasks/seq2seq.ts';
export { RerankTask, type RerankExample } from './train/tasks/rerank.ts';
export { EmbedTask, type EmbedExample } from './train/tasks/embed.ts';
export { AlignTask, type AlignExample } from './train/tasks/align.ts';
export { MaskedLmTask, maskTokens, type MlmOptions } from './train/tasks/mlm.ts';
export { pointwiseLoss, pairwiseLoss, softmaxCrossEntropy, listNetLoss } from './train/ranking.ts';
export { yesNoPrompt, yesNoPromptIds } from './train/tasks/yes_no.ts';
export { ClassificationTrainer } from './train/trainer.ts';
export { loadLatestCheckpoint } from './train/checkpoint.ts';

// Data files of the tasks (JSONL, errors with file:line).
export { readCausalLmJsonl, readEmbedJsonl, readRerankJsonl, readSeq2SeqJsonl } from './data/records.ts';
export { readJsonl } from './data/jsonl.ts';

// The jobs `lorakit train` runs (model + data files → an adapter folder).
export { runTrainJob, type TrainJobOptions, type TrainJobResult } from './tasks/train.ts';
export { runClassificationJob, type ClassifyJobOptions } from './tasks/classification.ts';

// Retrieval: BM25 and dense first stages, TREC runs and qrels, trec_eval's measures, rerankers, DUQGen.
export { Bm25Index, LUCENE_BM25, type Bm25Params } from './retrieval/bm25.ts';
export { analyzer, LUCENE_STOPWORDS, type AnalyzerConfig } from './retrieval/analyzer.ts';
export { DenseIndex } from './retrieval/dense.ts';
export { encodeTexts } from './retrieval/encode.ts';
export { readCorpus, readQueries, docText, type CorpusDoc, type Query } from './retrieval/corpus.ts';
export { readQrels, readRun, writeRun, formatRun, trecOrder, type Qrels, type Run, type ScoredDoc } from './retrieval/trec.ts';
export { evaluateRun, parseMeasure, DEFAULT_MEASURES, type IrEvaluation, type Measure } from './retrieval/metrics.ts';
export { CrossEncoder, YesNoReranker, runRerankJob, type RerankJobOptions } from './tasks/rerank.ts';
export { runIndexJob, runSearchJob, runEvalIrJob, encoderWithAdapters } from './tasks/retrieval.ts';
// LLM rerankers trained with RL: GRPO (a task of the one loop), Rank-R1 setwise, GroupRank groupwise.
export { GrpoTask, type GrpoPrompt, type GrpoOptions, type RewardFn } from './train/tasks/grpo.ts';
export { grpoLoss, type GrpoLossOptions } from './train/grpo/loss.ts';
export { groupAdvantages } from './train/grpo/advantages.ts';
export { RANK_R1_SYSTEM, rankR1Messages, rankR1Reward, rankR1Choice } from './retrieval/rank_r1.ts';
export { setwiseHeapsort, type SetwiseChooser, type SetwiseResult } from './retrieval/setwise.ts';
export { grouprankScores, grouprankWindows, grouprankReward } from './retrieval/grouprank.ts';
export { SetwiseReranker, type SetwiseOptions } from './tasks/setwise_rerank.ts';
export { GroupwiseReranker, type GroupwiseOptions } from './tasks/groupwise_rerank.ts';
export { runDuqgenJob, type DuqgenJobOptions } from './tasks/duqgen.ts';
export { sampleDocuments, allocateSamples, DUQGEN_SEEDS } from './duqgen/sampling.ts';
export { clusterEmbeddings } from './duqgen/kmeans.ts';
export { ExtractiveGenerator, ModelGenerator, duqgenPrompt, type QueryGenerator } from './duqgen/generators.ts';
export { NumpyRandomState } from './util/numpy_rng.ts';

// PEFT files: adapter_config.json + adapter_model.safetensors, both ways.
export { createPeftAdapter, loadPeftAdapter, readAdapter, saveAdapter, type PeftAdapter } from './peft/adapter_files.ts';

// GGUF for llama.cpp / node-llama-cpp (`lorakit export-gguf`): a Llama-family model (adapters merged first), or an adapter alone as a GGUF LoRA.
export { exportModelGguf, exportLoraGguf, ggufArchitecture, ggufTensorName, type GgufModelExport } from './peft/gguf_export.ts';
export { readGguf, parseGguf, writeGguf, GgufError, type GgufFile, type GgufValue, type GgufTensorInput } from './io/gguf.ts';
export { ggufVocabFromTokenizerJson, placeholderGgufVocab } from './tokenize/gguf_vocab.ts';

// Serving: several adapters on one base, generation.
export { PeftModel, padBatch, padDecoderIds, type TokenBatch } from './serve/peft_model.ts';
export { Generator, type GenerateOptions, type GenerateResult } from './serve/generate.ts';
export { Seq2SeqGenerator, type Seq2SeqGenerateOptions } from './serve/seq2seq_generate.ts';
export { beamSearch, type BeamSearchOptions, type BeamHypothesis } from './serve/beam_search.ts';
export { readGenerationDefaults, type GenerationDefaults } from './serve/generation_config.ts';

// Summarization: ROUGE as rouge-score computes it, LexRank, sentence splitting, the hybrid LexRank + seq2seq pipeline.
export { rougeScore, rougeScoreMulti, rougeTokenize, type RougeScore } from './summarize/rouge.ts';
export { porterStem } from './summarize/porter.ts';
export { RougeAccumulator, type CorpusRouge } from './summarize/evaluate.ts';
export { splitSentences } from './summarize/sentences.ts';
export { lexRankScores, tfidfSimilarity, bowSimilarity, denseCosine, lexTokens, IdfTable, topK, salienceOrder, type LexRankOptions } from './summarize/lexrank.ts';
export { extractSummary, rankUnits, type RankOptions } from './summarize/extract.ts';
export { SentenceEmbedder } from './summarize/embed_similarity.ts';
export { Seq2SeqSummarizer, type SummaryGeneration } from './summarize/hybrid.ts';
export { readSummDocuments, documentUnits, type SummDocument } from './summarize/documents.ts';
export { runSummarizeJob, runEvalSummJob, type SummarizeJobOptions, type EvalSummOptions } from './tasks/summarize.ts';

// The engine: graph IR, op builders, reverse-mode autodiff, ONNX Runtime sessions.
export { Graph, Value } from './graph/ir.ts';
export * as op from './graph/ops.ts';
export { grad } from './autodiff/grad.ts';
export { CompiledGraph, type HostTensor, type SessionOptions } from './runtime/session.ts';

// The LoRA-limits monitor: per attention layer, max |X·W*| of Q, K, V against √(ln L) (FitOptions.monitorNorms).
export { NormMonitor, attentionProjections, type NormRecord, type LayerNorms, type NormPeak } from './train/norm_monitor.ts';
export { normsSvg, writeNormsPlot } from './train/norm_plot.ts';

// Workflows. LoRAM (train small, infer large): structured pruning, recovery of a LoRA for the original model.
export { runLoramPrune, pruneWeights, prunedConfig, planLayers, importances as loramImportances, type LoramPruneOptions, type LoramPruneResult } from './workflows/loram/prune.ts';
export { runLoramRecover, recoverTensors, type LoramRecoverOptions, type RecoverFill } from './workflows/loram/recover.ts';
export { readPlan as readLoramPlan, type LoramPlan, type LayerPlan } from './workflows/loram/plan.ts';
// LoKU knowledge unlearning: inverted hinge loss, FILA, the unlearning task and job.
export { runUnlearn, type UnlearnOptions, type UnlearnResult, type UnlearnInit } from './workflows/loku/unlearn.ts';
export { invertedHingeLoss } from './workflows/loku/ihl.ts';
export { filaInit, measureImportance, type FisherSums } from './workflows/loku/fila.ts';
export { UnlearnTask, type UnlearnLoss } from './workflows/loku/task.ts';
export { knowledgeMetrics, type KnowledgeMetrics } from './workflows/loku/evaluate.ts';
// SG-LoRA: adapters for unseen tasks from their description.
export { runSgLoraBuild, runSgLoraGenerate, type GenerateMethod as SgLoraMethod } from './workflows/sg_lora/jobs.ts';
export { similarityWeights, weightedMerge } from './workflows/sg_lora/similarity.ts';
