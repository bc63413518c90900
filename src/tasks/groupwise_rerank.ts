// GroupRank inference (AQ-MedAI/Diver Reranker/rerank_groupwise.py): windows
// of --group-size candidates --stride apart in one prompt each, the model's
// JSON scores / 10 averaged over windows and --passes passes (each pass shows
// the candidates in a seeded shuffled order, as the official code shuffles),
// sampled as the official settings (temperature 0.3, top-p 0.8). Unreadable
// windows fall back to the first stage's order and are counted
// (src/retrieval/grouprank.ts). The 0.6 / 0.4 fusion is `--fuse 0.6`.

import type { HfTokenizer } from '../io/hf.ts';
import type { BaseDtype } from '../quant/base_dtype.ts';
import type { DecoderModel } from '../models/decoder.ts';
import { GROUPRANK_SYSTEM, grouprankRerank, grouprankScores, grouprankUser } from '../retrieval/grouprank.ts';
import { Generator } from '../serve/generate.ts';
import { Rng } from '../util/rng.ts';
import { chatPromptIds, fitPrompt, loadStackedDecoder } from './grpo_data.ts';
import { cutToTokens } from '../train/tasks/yes_no.ts';

export interface GroupwiseOptions {
  groupSize?: number;
  stride?: number;
  passes?: number;
  maxLen?: number;
  maxNewTokens?: number;
  seed?: number;
  threads?: number;
  /** Form of the decoder's frozen linear weights (--base-dtype). */
  baseDtype?: BaseDtype;
}

export class GroupwiseReranker {
  private constructor(
    private readonly gen: Generator,
    private readonly tok: HfTokenizer,
    private readonly model: DecoderModel,
    private readonly o: Required<Omit<GroupwiseOptions, 'threads' | 'baseDtype'>>,
  ) {}

  static async load(spec: string, adapters: readonly string[], o: GroupwiseOptions = {}): Promise<GroupwiseReranker> {
    const { model, top, tokenizer } = await loadStackedDecoder(spec, adapters, "groupwise reranking generates GroupRank's JSON answer", o.baseDtype);
    const settings = { groupSize: o.groupSize ?? 20, stride: o.stride ?? 10, passes: o.passes ?? 2, maxLen: o.maxLen ?? 128, maxNewTokens: o.maxNewTokens ?? 512, seed: o.seed ?? 666 };
    return new GroupwiseReranker(new Generator(model, top, { threads: o.threads }), tokenizer, model, settings);
  }

  private promptIds(query: string, docs: readonly string[]): number[] {
    const cut = (s: string, n: number) => cutToTokens(this.tok, s, n);
    const ids = chatPromptIds(this.tok, [{ role: 'system', content: GROUPRANK_SYSTEM }, { role: 'user', content: grouprankUser(cut(query, 32), docs.map((d) => cut(d, this.o.maxLen))) }]);
    return fitPrompt(ids, this.model.config.maxPositions, this.o.maxNewTokens, `groupwise: a window of ${docs.length} documents`, '--max-len, --max-new-tokens or --group-size');
  }

  /** The reranker's score of each candidate (first-stage order), and the windows asked / unreadable. */
  async score(qid: string, query: string, docs: readonly string[]): Promise<{ scores: Float64Array; windows: number; malformed: number }> {
    const root = new Rng(this.o.seed).fork(`groupwise-${qid}`);
    let w = 0;
    return grouprankRerank(docs.length, { ...this.o, order: (p) => root.fork(`pass-${p}`).shuffle([...docs.keys()]) }, async (shown) => {
      const r = await this.gen.generate(this.promptIds(query, shown.map((i) => docs[i])), { doSample: true, temperature: 0.3, topP: 0.8, maxNewTokens: this.o.maxNewTokens, seed: root.fork(`window-${w++}`).nextUint32() });
      return grouprankScores(this.tok.decode(r.tokens, { skipSpecialTokens: true }), shown.length);
    });
  }

  release(): Promise<void> {
    return this.gen.release();
  }
}
