// `lorakit rerank`: re-score the top of a first-stage TREC run.
//
//   cross  a cross-encoder: each (query, document) pair through the encoder
//          (BERT-family folders: [CLS] q [SEP] d [SEP] with token_type_ids;
//          the bundled encoder: the pair text), then the score head that
//          `lorakit train --task rerank` saved beside the adapter
//          (modules_to_save 'score.weight' / 'score.bias'). The same graph as
//          training (RerankTask in eval mode).
//   bi     a bi-encoder: cosine of the query's and the document's embeddings
//          (adapters optional: an embed-task adapter, or a stack).
//   yesno  a decoder or T5/BART folder asked "Does the passage answer the
//          query?", scored by P(yes) (llm-rankers' pointwise yes_no; SETR's
//          second stage in text), with a LoRA from lorakit train --task rerank
//          on that folder, or none.
//   setwise Rank-R1: a decoder answers which of 20 documents is most relevant;
//          a heapsort over the candidates finds the top k (src/tasks/setwise_rerank.ts).
//          Scores are positions: the first gets n, the last 1.
//   groupwise GroupRank: windows of candidates scored 0–10 in JSON, averaged
//          over windows and passes (src/tasks/groupwise_rerank.ts).
//
// `adapters` may stack several folders (--stack lang,task): the first ones are
// merged into the base weights, the last (the task adapter, with the score
// head for 'cross') runs on top.

import fs from 'node:fs';
import path from 'node:path';
import type { AdapterSet } from '../adapters/inject.ts';
import { loadModel, type TextTokenizer } from '../models/load.ts';
import { quantizeLike, type BaseDtype } from '../quant/base_dtype.ts';
import type { EncoderModel } from '../models/types.ts';
import { loadPeftAdapter } from '../peft/adapter_files.ts';
import { docText, readCorpus, readQueries, type DocField } from '../retrieval/corpus.ts';
import { encodeTexts } from '../retrieval/encode.ts';
import { readRun, trecOrder, writeRun, type Run } from '../retrieval/trec.ts';
import { Trainer } from '../train/loop.ts';
import { RerankTask, SCORE_B, SCORE_W, type RerankBatch, type RerankExample } from '../train/tasks/rerank.ts';
import { encoderWithAdapters, type EncoderWithAdapters } from './retrieval.ts';
import type { HfTokenizer } from '../io/hf.ts';
import { yesNoPromptIds, yesNoTokens } from '../train/tasks/yes_no.ts';
import { padBatch as padServeBatch, padDecoderIds, PeftModel } from '../serve/peft_model.ts';
import { pairEncoder, rerankExample, silentUi, type JobUi } from './train.ts';
import { SetwiseReranker } from './setwise_rerank.ts';
import { GroupwiseReranker } from './groupwise_rerank.ts';

export type RerankMode = 'cross' | 'bi' | 'yesno' | 'setwise' | 'groupwise';

export interface RerankJobOptions {
  /** 'use' or an encoder folder. */
  model: string;
  /** Adapter folders, stacked in this order (cross: the last holds the score head). */
  adapters: string[];
  run: string;
  queries: string;
  corpus: string;
  /** Candidates re-scored per query (the run's best by score). */
  top: number;
  out: string;
  mode?: RerankMode;
  fields?: DocField[];
  maxLen?: number;
  /** bi: texts per encoder run. */
  batchSize?: number;
  threads?: number;
  tag?: string;
  /**
   * Fuse with the first stage: score = w·mm(reranker) + (1 − w)·mm(first stage),
   * mm = min-max over the query's re-scored candidates (GroupRank's final
   * 0.6·reranker + 0.4·retriever is w = 0.6). Absent: the reranker's score alone.
   */
  fuse?: number;
  /** setwise: children per heap node (documents per prompt − 1; default 19). */
  numChild?: number;
  /** setwise: documents the heapsort ranks (default 10). */
  k?: number;
  /** setwise: longest answer (default 256). */
  maxNewTokens?: number;
  /** setwise: seed of the documents' shuffled order in each prompt; groupwise: of each pass's order and the sampling. */
  seed?: number;
  /** groupwise: window size, stride, passes (defaults 20, 10, 2). */
  groupSize?: number;
  stride?: number;
  passes?: number;
  /** Form of the model's frozen linear weights (--base-dtype; every strategy). */
  baseDtype?: BaseDtype;
}

export interface RerankJobResult {
  queries: number;
  pairs: number;
  seconds: number;
  mode: RerankMode;
  /** setwise: prompts asked, and answers that could not be read (the parent kept its place). */
  prompts?: number;
  malformed?: number;
}

interface Candidates {
  qid: string;
  query: string;
  docs: { id: string; text: string; first: number }[];
}

/** Min-max normalization (all equal → all 0). */
function minMax(xs: readonly number[]): number[] {
  const lo = Math.min(...xs), hi = Math.max(...xs);
  return xs.map((x) => (hi > lo ? (x - lo) / (hi - lo) : 0));
}

function candidates(o: RerankJobOptions): Candidates[] {
  const run = readRun(o.run);
  const queries = new Map(readQueries(o.queries).map((q) => [q.id, q.text]));
  const corpus = new Map(readCorpus(o.corpus).map((d) => [d.id, docText(d, o.fields ?? ['title', 'text'])]));
  const out: Candidates[] = [];
  for (const [qid, docs] of run) {
    const query = queries.get(qid);
    if (query === undefined) throw new Error(`${o.run}: query '${qid}' is not in ${o.queries}`);
    const top = trecOrder(docs).slice(0, o.top);
    out.push({
      qid,
      query,
      docs: top.map((d) => {
        const text = corpus.get(d.docno);
        if (text === undefined) throw new Error(`${o.run}: document '${d.docno}' (query '${qid}') is not in ${o.corpus}`);
        return { id: d.docno, text, first: d.score };
      }),
    });
  }
  return out;
}

/** A cross-encoder reranker from an encoder and a `lorakit train --task rerank` adapter (stack). */
export class CrossEncoder {
  private constructor(
    private readonly trainer: Trainer<RerankExample, RerankBatch>,
    private readonly pair: (q: string, d: string) => { ids: number[]; types: number[] },
  ) {}

  static async load(spec: string, adapters: readonly string[], o: { maxLen?: number; threads?: number; baseDtype?: BaseDtype } = {}): Promise<CrossEncoder> {
    if (!adapters.length) throw new Error("cross-encoder reranking needs the adapter folder from 'lorakit train --task rerank' (it holds the score head)");
    const loaded = await loadModel(spec, undefined, { baseDtype: o.baseDtype });
    if (loaded.kind !== 'encoder') throw new Error(`--model ${spec}: a cross-encoder is an encoder (the bundled 'use' model or a BERT / RoBERTa / DistilBERT folder)`);
    if (!loaded.tokenizer) throw new Error(`${path.join(spec, 'tokenizer.json')}: not found`);
    const base: EncoderModel = loaded.model;
    const sets: AdapterSet[] = [];
    let head: Map<string, { shape: number[]; data: Float32Array }> | undefined;
    for (const dir of adapters) {
      const a = loadPeftAdapter(base, dir, { warn: () => {} });
      sets.push(a.set);
      head = a.extraTensors;
    }
    const w = head!.get(SCORE_W), b = head!.get(SCORE_B);
    if (!w || !b) throw new Error(`${adapters[adapters.length - 1]}: no score head ('${SCORE_W}', '${SCORE_B}' in modules_to_save): train it with lorakit train --task rerank, or use --mode bi`);
    const below = sets.slice(0, -1);
    const model = below.length ? base.withWeights(quantizeLike(below.reduce((m, s) => s.mergeInto(m), base.weights), base.sites, base.weights)) : base;
    const task = new RerankTask(model, { seed: 0 });
    const sw = task.params.get(SCORE_W)!, sb = task.params.get(SCORE_B)!;
    if (w.data.length !== sw.data.length) throw new Error(`${adapters[adapters.length - 1]}: score head has ${w.data.length} weights, this model's pooled width is ${sw.data.length} (trained on another model?)`);
    sw.data.set(w.data);
    sb.data.set(b.data);
    const trainer = new Trainer(task, sets[sets.length - 1], { epochs: 1, lr: 1, batchSize: 1, seed: 0, threads: o.threads });
    const maxLen = Math.min(o.maxLen ?? 128, 'maxSequenceLength' in model ? (model as { maxSequenceLength: number }).maxSequenceLength : 128);
    return new CrossEncoder(trainer, pairEncoder(loaded.tokenizer as TextTokenizer, maxLen));
  }

  /** Scores of each document for the query (one encoder run per query). */
  async score(query: string, docs: readonly string[]): Promise<Float32Array> {
    if (!docs.length) return new Float32Array(0);
    const ex = rerankExample(this.pair, query, docs, docs.map(() => 0));
    const [res] = await this.trainer.run([ex]);
    return Float32Array.from((res.out.scores.data as Float32Array).subarray(0, docs.length));
  }

  release(): Promise<void> {
    return this.trainer.release();
  }
}

/**
 * Scores each query's candidates, appending every finished query to
 * `<out>.partial` (a first line records the settings): a rerank stopped
 * midway continues from there with the same settings, and the file goes once
 * the run is written.
 */
async function perQuery(o: RerankJobOptions, mode: RerankMode, cands: Candidates[], out: Run, ui: JobUi, score: (c: Candidates) => Promise<Float32Array>): Promise<void> {
  const partial = `${o.out}.partial`;
  const head = JSON.stringify({ model: o.model, adapters: o.adapters.map((a) => path.resolve(a)), run: path.resolve(o.run), top: o.top, mode, maxLen: o.maxLen ?? 128, fields: o.fields ?? ['title', 'text'], ...(o.baseDtype && o.baseDtype !== 'fp32' && { baseDtype: o.baseDtype }) });
  const done = new Map<string, number[]>();
  if (fs.existsSync(partial)) {
    const lines = fs.readFileSync(partial, 'utf8').split('\n');
    if (lines[0] === head) {
      for (const l of lines.slice(1)) {
        try {
          const r = JSON.parse(l);
          done.set(r.qid, r.scores);
        } catch {
          break; // a torn last line: that query is scored again
        }
      }
    }
  }
  fs.writeFileSync(partial, [head, ...[...done].map(([qid, scores]) => JSON.stringify({ qid, scores }))].join('\n') + '\n');
  if (done.size) ui.info(`resuming: ${done.size} of ${cands.length} queries already scored (${partial})`);
  ui.startPhase(`rerank (${mode === 'yesno' ? 'yes/no' : mode === 'setwise' || mode === 'groupwise' ? mode : 'cross-encoder'})`, cands.reduce((s, c) => s + c.docs.length, 0));
  for (const c of cands) {
    let s = done.get(c.qid);
    if (!s || s.length !== c.docs.length) {
      s = Array.from(await score(c));
      fs.appendFileSync(partial, JSON.stringify({ qid: c.qid, scores: s }) + '\n');
    }
    out.set(c.qid, c.docs.map((d, i) => ({ docno: d.id, score: s![i] })));
    ui.advance?.(c.docs.length);
  }
  ui.endPhase();
}

export async function runRerankJob(o: RerankJobOptions, ui: JobUi = silentUi): Promise<RerankJobResult> {
  const t0 = performance.now();
  const mode = o.mode ?? 'cross';
  const cands = candidates(o);
  const pairs = cands.reduce((s, c) => s + c.docs.length, 0);
  const out: Run = new Map();
  let counts: { prompts: number; malformed: number } | undefined;
  if (mode === 'groupwise') {
    const gw = await GroupwiseReranker.load(o.model, o.adapters, { groupSize: o.groupSize, stride: o.stride, passes: o.passes, maxLen: o.maxLen, maxNewTokens: o.maxNewTokens, seed: o.seed, threads: o.threads, baseDtype: o.baseDtype });
    counts = { prompts: 0, malformed: 0 };
    try {
      await perQuery(o, mode, cands, out, ui, async (c) => {
        const r = await gw.score(c.qid, c.query, c.docs.map((d) => d.text));
        counts!.prompts += r.windows;
        counts!.malformed += r.malformed;
        return Float32Array.from(r.scores);
      });
    } finally {
      await gw.release();
    }
  } else if (mode === 'setwise') {
    const sw = await SetwiseReranker.load(o.model, o.adapters, { numChild: o.numChild, k: o.k, maxLen: o.maxLen, maxNewTokens: o.maxNewTokens, seed: o.seed, threads: o.threads, baseDtype: o.baseDtype });
    counts = { prompts: 0, malformed: 0 };
    try {
      await perQuery(o, mode, cands, out, ui, async (c) => {
        const r = await sw.rank(c.qid, c.query, c.docs.map((d) => d.text));
        counts!.prompts += r.prompts;
        counts!.malformed += r.malformed;
        const s = new Float32Array(c.docs.length);
        r.order.forEach((i, pos) => (s[i] = c.docs.length - pos));
        return s;
      });
    } finally {
      await sw.release();
    }
  } else if (mode === 'yesno') {
    const yn = await YesNoReranker.load(o.model, o.adapters, { maxLen: o.maxLen, threads: o.threads, baseDtype: o.baseDtype });
    try {
      await perQuery(o, mode, cands, out, ui, (c) => yn.score(c.query, c.docs.map((d) => d.text)));
    } finally {
      await yn.release();
    }
  } else if (mode === 'cross') {
    const ce = await CrossEncoder.load(o.model, o.adapters, { maxLen: o.maxLen, threads: o.threads, baseDtype: o.baseDtype });
    try {
      await perQuery(o, mode, cands, out, ui, (c) => ce.score(c.query, c.docs.map((d) => d.text)));
    } finally {
      await ce.release();
    }
  } else {
    const enc: EncoderWithAdapters = await encoderWithAdapters(o.model, o.adapters, o.threads, o.baseDtype);
    try {
      const docIds = [...new Set(cands.flatMap((c) => c.docs.map((d) => d.id)))];
      const text = new Map(cands.flatMap((c) => c.docs.map((d) => [d.id, d.text] as const)));
      ui.startPhase('rerank (bi-encoder)', docIds.length + cands.length);
      const step = { maxLen: o.maxLen ?? 128, batchSize: o.batchSize, onProgress: (n: number) => ui.advance?.(n) };
      const D = await encodeTexts(enc.peft, enc.tok, docIds.map((d) => text.get(d)!), step);
      const Q = await encodeTexts(enc.peft, enc.tok, cands.map((c) => c.query), step);
      ui.endPhase();
      const row = new Map(docIds.map((d, i) => [d, i]));
      cands.forEach((c, qi) => {
        out.set(c.qid, c.docs.map((d) => {
          const j = row.get(d.id)!;
          let s = 0;
          for (let k = 0; k < D.dim; k++) s += Q.vectors[qi * D.dim + k] * D.vectors[j * D.dim + k];
          return { docno: d.id, score: s };
        }));
      });
    } finally {
      await enc.peft.release();
    }
  }
  if (o.fuse !== undefined) {
    const w = o.fuse;
    if (!(w >= 0 && w <= 1)) throw new Error(`fuse weight must be in [0, 1], got ${w}`);
    for (const c of cands) {
      const r = out.get(c.qid)!;
      const a = minMax(r.map((d) => d.score)), b = minMax(c.docs.map((d) => d.first));
      out.set(c.qid, r.map((d, i) => ({ docno: d.docno, score: w * a[i] + (1 - w) * b[i] })));
    }
  }
  writeRun(o.out, out, o.tag ?? `lorakit-${mode}`);
  fs.rmSync(`${o.out}.partial`, { force: true });
  return { queries: cands.length, pairs, seconds: (performance.now() - t0) / 1000, mode, ...counts };
}

/**
 * A pointwise yes/no reranker on a decoder (GPT-2, Llama, Qwen2, Mistral) or
 * T5 / BART folder, optionally with a LoRA (or any method's) adapter: score =
 * P(yes) = softmax([logit('Yes'), logit('No')])[0] at the answer position
 * (the decoder's next token after the prompt; the seq2seq decoder's first
 * step), as llm-rankers' yes_no does — the text form of SETR's second stage.
 * Query and passage are cut to 32 and `maxLen` tokens first (llm-rankers'
 * query_length / passage_length).
 */
export class YesNoReranker {
  private constructor(
    private readonly peft: PeftModel,
    private readonly tok: HfTokenizer,
    private readonly yes: number,
    private readonly no: number,
    private readonly kind: 'decoder' | 'seq2seq',
    private readonly decoderStart: number,
    private readonly maxPositions: number,
    private readonly maxLen: number,
  ) {}

  static async load(spec: string, adapters: readonly string[], o: { maxLen?: number; threads?: number; baseDtype?: BaseDtype } = {}): Promise<YesNoReranker> {
    const loaded = await loadModel(spec, undefined, { baseDtype: o.baseDtype });
    if (loaded.kind === 'encoder') throw new Error(`--model ${spec}: the yes/no reranker needs a decoder (GPT-2, Llama, Qwen2, Mistral) or T5 / BART folder; an encoder reranks with --mode cross or bi`);
    const tok = loaded.tokenizer;
    if (!tok) throw new Error(`${path.join(spec, 'tokenizer.json')}: not found`);
    const { yes, no } = yesNoTokens(tok, spec);
    const peft = new PeftModel(loaded.model, { threads: o.threads });
    adapters.forEach((dir, i) => peft.loadAdapter(dir, `a${i}`, { warn: () => {} }));
    if (adapters.length) peft.setActiveAdapters(adapters.map((_, i) => `a${i}`));
    const maxPositions = loaded.kind === 'decoder' ? loaded.model.config.maxPositions : Infinity;
    const start = loaded.kind === 'seq2seq' ? loaded.model.config.decoderStartTokenId : 0;
    return new YesNoReranker(peft, tok, yes, no, loaded.kind, start, maxPositions, o.maxLen ?? 128);
  }

  /** The prompt's token ids (query and passage cut first; the passage cut further to fit the model's positions). */
  promptIds(query: string, passage: string): number[] {
    return yesNoPromptIds(this.tok, query, passage, { maxLen: this.maxLen, maxPositions: this.maxPositions });
  }

  async score(query: string, docs: readonly string[], batchSize = 8): Promise<Float32Array> {
    return this.scoreIds(docs.map((d) => this.promptIds(query, d)), batchSize);
  }

  /** P(yes) of each prompt (token ids), `batchSize` prompts a run (right-padded). */
  async scoreIds(allPrompts: readonly number[][], batchSize = 8): Promise<Float32Array> {
    const out = new Float32Array(allPrompts.length);
    for (let s = 0; s < allPrompts.length; s += batchSize) {
      const prompts = allPrompts.slice(s, s + batchSize);
      const batch = padServeBatch(prompts);
      const logits = this.kind === 'seq2seq' ? await this.peft.run(batch, padDecoderIds(prompts.map(() => [this.decoderStart]))) : await this.peft.run(batch);
      const [B, T, V] = logits.dims;
      const l = logits.data as Float32Array;
      for (let b = 0; b < B; b++) {
        const t = this.kind === 'seq2seq' ? 0 : prompts[b].length - 1;
        const y = l[(b * T + t) * V + this.yes], n = l[(b * T + t) * V + this.no];
        out[s + b] = 1 / (1 + Math.exp(n - y)); // softmax([y, n])[0]
      }
    }
    return out;
  }

  release(): Promise<void> {
    return this.peft.release();
  }
}
