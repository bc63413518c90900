// The pointwise yes/no relevance prompt of llm-rankers (ielab/llm-rankers,
// llmrankers/pointwise.py, method yes_no) for decoder and T5/BART folders:
// "Passage: …\nQuery: …\nDoes the passage answer the query? Answer 'Yes' or
// 'No'", scored by P(yes) over the first tokens of "Yes" and "No". Training a
// LoRA on it (lorakit train --task rerank on such a folder) teaches the answer
// token: the causal-LM / seq2seq loss on that one token, i.e. a pointwise
// cross-entropy. Inference: YesNoReranker (src/tasks/rerank.ts).

import type { HfTokenizer } from '../../io/hf.ts';

export function yesNoPrompt(query: string, passage: string): string {
  return `Passage: ${passage}\nQuery: ${query}\nDoes the passage answer the query? Answer 'Yes' or 'No'`;
}

/** The first token of "Yes" and of "No" (the answer tokens scored and trained). */
export function yesNoTokens(tok: HfTokenizer, where: string): { yes: number; no: number } {
  const first = (w: string) => {
    const ids = tok.encode(w, { addSpecialTokens: false });
    if (!ids.length) throw new Error(`${where}: the tokenizer gives no token for '${w}'`);
    return ids[0];
  };
  const r = { yes: first('Yes'), no: first('No') };
  if (r.yes === r.no) throw new Error(`${where}: 'Yes' and 'No' start with the same token`);
  return r;
}

/** A text cut to its first `n` tokens (llm-rankers' query_length / passage_length truncation). */
export function cutToTokens(tok: HfTokenizer, s: string, n: number): string {
  const ids = tok.encode(s, { addSpecialTokens: false });
  return ids.length <= n ? s : tok.decode(ids.slice(0, n), { skipSpecialTokens: true });
}

/**
 * The prompt's ids: the query cut to 32 tokens and the passage to `maxLen`
 * (llm-rankers' query_length / passage_length), the passage cut further until
 * the prompt and `reserve` answer tokens fit in `maxPositions`.
 */
export function yesNoPromptIds(tok: HfTokenizer, query: string, passage: string, o: { maxLen?: number; maxPositions?: number; reserve?: number } = {}): number[] {
  const cut = (s: string, n: number) => cutToTokens(tok, s, n);
  const limit = (o.maxPositions ?? Infinity) - (o.reserve ?? 1);
  const q = cut(query, 32);
  let p = cut(passage, o.maxLen ?? 128);
  let ids = tok.encode(yesNoPrompt(q, p));
  while (ids.length > limit && p) {
    const n = tok.encode(p, { addSpecialTokens: false }).length;
    p = cut(p, Math.max(0, n - (ids.length - limit)));
    ids = tok.encode(yesNoPrompt(q, p));
  }
  if (ids.length > limit) throw new Error(`the yes/no prompt needs ${ids.length} tokens with an empty passage; the model has ${o.maxPositions} positions`);
  return ids;
}
