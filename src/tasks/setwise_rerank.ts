// Rank-R1 inference (ielab/llm-rankers Rank-R1/run_setwise.py with
// llmrankers/setwise.py's heapsort): a decoder, optionally with the adapter
// from `lorakit train --task grpo --reward rank-r1`, is asked Rank-R1's setwise
// prompt over a node of the heap and its children (20 documents for the
// default 19 children) and answers greedily; `<answer>[k]</answer>` names the
// winner. As the official compare() does, the documents of each prompt are
// shown in a shuffled order (seeded here) and mapped back. An unreadable
// answer keeps the parent (counted).

import type { HfTokenizer } from '../io/hf.ts';
import type { BaseDtype } from '../quant/base_dtype.ts';
import type { DecoderModel } from '../models/decoder.ts';
import { rankR1Choice, rankR1Messages } from '../retrieval/rank_r1.ts';
import { setwiseHeapsort, type SetwiseResult } from '../retrieval/setwise.ts';
import { Generator } from '../serve/generate.ts';
import { Rng } from '../util/rng.ts';
import { chatPromptIds, fitPrompt, loadStackedDecoder } from './grpo_data.ts';
import { cutToTokens } from '../train/tasks/yes_no.ts';

export interface SetwiseOptions {
  /** Children per heap node: a prompt shows numChild + 1 documents (default 19: Rank-R1's 20). */
  numChild?: number;
  /** Documents ranked by the heapsort (default 10); the rest keep the heap's order below them. */
  k?: number;
  /** Token budget of a passage (default 128). */
  maxLen?: number;
  /** Longest answer (default 256; reasoning takes tokens). */
  maxNewTokens?: number;
  seed?: number;
  threads?: number;
  /** Form of the decoder's frozen linear weights (--base-dtype). */
  baseDtype?: BaseDtype;
}

export class SetwiseReranker {
  private constructor(
    private readonly gen: Generator,
    private readonly tok: HfTokenizer,
    private readonly model: DecoderModel,
    private readonly o: Required<Omit<SetwiseOptions, 'threads' | 'baseDtype'>>,
  ) {}

  static async load(spec: string, adapters: readonly string[], o: SetwiseOptions = {}): Promise<SetwiseReranker> {
    const { model, top, tokenizer } = await loadStackedDecoder(spec, adapters, "setwise reranking generates Rank-R1's answer", o.baseDtype);
    const settings = { numChild: o.numChild ?? 19, k: o.k ?? 10, maxLen: o.maxLen ?? 128, maxNewTokens: o.maxNewTokens ?? 256, seed: o.seed ?? 929 };
    return new SetwiseReranker(new Generator(model, top, { threads: o.threads }), tokenizer, model, settings);
  }

  /** The prompt's ids for a query and documents (query cut to 32 tokens, passages to maxLen). */
  promptIds(query: string, docs: readonly string[]): number[] {
    const cut = (s: string, n: number) => cutToTokens(this.tok, s, n);
    const ids = chatPromptIds(this.tok, rankR1Messages(cut(query, 32), docs.map((d) => cut(d, this.o.maxLen))));
    return fitPrompt(ids, this.model.config.maxPositions, this.o.maxNewTokens, `setwise: a prompt of ${docs.length} documents`, '--max-len, --max-new-tokens or --num-child');
  }

  /** The candidates' order (indices into `docs`, best first) and the prompts it took. */
  async rank(qid: string, query: string, docs: readonly string[]): Promise<SetwiseResult<number>> {
    const rng = new Rng(this.o.seed).fork(`setwise-${qid}`);
    return setwiseHeapsort(docs.map((_, i) => i), { numChild: this.o.numChild, k: this.o.k }, async (shown) => {
      const perm = rng.shuffle(shown.map((_, j) => j)); // position p shows shown[perm[p]]
      const r = await this.gen.generate(this.promptIds(query, perm.map((j) => docs[shown[j]])), { maxNewTokens: this.o.maxNewTokens });
      const p = rankR1Choice(this.tok.decode(r.tokens, { skipSpecialTokens: true }), shown.length);
      return p === null ? null : perm[p];
    });
  }

  release(): Promise<void> {
    return this.gen.release();
  }
}
