// The prompts and the reward of `lorakit train --task grpo`:
//   --reward rank-r1     data in the rerank format {"query", "documents", "labels"};
//                        each record becomes Rank-R1's setwise prompt over its
//                        documents (src/retrieval/rank_r1.ts), rewarded 1 iff the
//                        answer format holds and names a document with label > 0.
//   --reward grouprank   the same data; each record is one GroupRank window (its
//                        documents, at most 20) rewarded by our reading of the
//                        paper's unreleased reward (src/retrieval/grouprank.ts).
//   --reward <module.js> data {"prompt": "..."} or {"messages": [...]} with any
//                        other fields; the module's default export (or `reward`)
//                        (completion: string, record) => number scores a completion.
// A prompt given as messages goes through the tokenizer's chat template (with
// the generation prompt); a folder without one gets the turns' contents joined
// by blank lines (a tiny test model has no template; a real instruct model does).

import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { readJsonLines, readRerankJsonl } from '../data/records.ts';
import type { HfTokenizer } from '../io/hf.ts';
import { rankR1Messages, rankR1Reward } from '../retrieval/rank_r1.ts';
import { GROUPRANK_SYSTEM, grouprankReward, grouprankUser } from '../retrieval/grouprank.ts';
import type { GrpoPrompt, RewardFn } from '../train/tasks/grpo.ts';
import { cutToTokens as cut } from '../train/tasks/yes_no.ts';
import type { AdapterSet } from '../adapters/inject.ts';
import type { DecoderModel } from '../models/decoder.ts';
import { loadModel } from '../models/load.ts';
import { quantizeLike, type BaseDtype } from '../quant/base_dtype.ts';
import { loadPeftAdapter } from '../peft/adapter_files.ts';

type Message = { role: string; content: string };

/** Token ids of a prompt given as chat turns. */
export function chatPromptIds(tok: HfTokenizer, messages: Message[]): number[] {
  if (tok.hasChatTemplate) return tok.encode(tok.applyChatTemplate(messages, { addGenerationPrompt: true }), { addSpecialTokens: false });
  return tok.encode(messages.map((m) => m.content).join('\n\n') + '\n\n');
}

/**
 * A decoder folder for an LLM reranker with its adapter folders stacked: the
 * lower ones merged into the weights, the last one served. `what` names the
 * reranker in the error for a folder of another family. With a quantized
 * `baseDtype` the merged weights are quantized again (the served base stays quantized).
 */
export async function loadStackedDecoder(spec: string, adapters: readonly string[], what: string, baseDtype?: BaseDtype): Promise<{ model: DecoderModel; top: AdapterSet | null; tokenizer: HfTokenizer }> {
  const loaded = await loadModel(spec, undefined, { baseDtype });
  if (loaded.kind !== 'decoder') throw new Error(`--model ${spec}: ${what} with a decoder folder (Qwen2, Llama, Mistral, GPT-2)`);
  if (!loaded.tokenizer) throw new Error(`${path.join(spec, 'tokenizer.json')}: not found`);
  let model: DecoderModel = loaded.model;
  let top: AdapterSet | null = null;
  adapters.forEach((dir, i) => {
    const { set } = loadPeftAdapter(model, dir, { warn: () => {}, headNames: model.headNames });
    if (i < adapters.length - 1) model = model.withWeights(quantizeLike(set.mergeInto(model.weights), model.sites, model.weights));
    else top = set;
  });
  return { model, top, tokenizer: loaded.tokenizer };
}

export async function loadReward(spec: string): Promise<RewardFn> {
  if (spec === 'rank-r1') return (completion, record) => rankR1Reward(completion, record.relevant as string[]);
  if (spec === 'grouprank') return (completion, record) => grouprankReward(completion, record.labels as number[]);
  if (!/\.(m?js|ts)$/.test(spec)) throw new Error(`--reward ${spec}: give 'rank-r1', 'grouprank' or a JavaScript module (.js / .mjs) whose default export is (completion, record) => number`);
  const mod = await import(pathToFileURL(path.resolve(spec)).href);
  const fn = mod.default ?? mod.reward;
  if (typeof fn !== 'function') throw new Error(`--reward ${spec}: the module exports no function (default export or 'reward')`);
  return fn as RewardFn;
}

/** The prompts of a GRPO data file, each cut to fit `maxPositions` with `maxNewTokens` to spare. */
export function readGrpoPrompts(file: string, tok: HfTokenizer, o: { reward: string; maxLen: number; maxPositions: number; maxNewTokens: number }): GrpoPrompt[] {
  const limit = o.maxPositions - o.maxNewTokens;
  const fit = (ids: number[], i: number) => {
    if (ids.length > limit) throw new Error(`${file}: prompt ${i + 1} has ${ids.length} tokens; with --max-new-tokens ${o.maxNewTokens} the model's ${o.maxPositions} positions leave ${limit} (lower --max-len or --max-new-tokens)`);
    return ids;
  };
  if (o.reward === 'rank-r1') {
    return readRerankJsonl(file).map((r, i) => {
      const relevant = r.labels.flatMap((l, k) => (l > 0 ? [`[${k + 1}]`] : []));
      if (!relevant.length) throw new Error(`${file}: record ${i + 1} has no relevant document (label > 0): its reward would always be 0`);
      if (r.documents.length > 20) throw new Error(`${file}: record ${i + 1} has ${r.documents.length} documents; Rank-R1's prompt labels at most 20`);
      const docs = r.documents.map((d) => cut(tok, d, o.maxLen));
      return { ids: fit(chatPromptIds(tok, rankR1Messages(cut(tok, r.query, 32), docs)), i), record: { relevant } };
    });
  }
  if (o.reward === 'grouprank') {
    return readRerankJsonl(file).map((r, i) => {
      if (r.documents.length > 20) throw new Error(`${file}: record ${i + 1} has ${r.documents.length} documents; a GroupRank window holds at most 20`);
      const user = grouprankUser(cut(tok, r.query, 32), r.documents.map((d) => cut(tok, d, o.maxLen)));
      return { ids: fit(chatPromptIds(tok, [{ role: 'system', content: GROUPRANK_SYSTEM }, { role: 'user', content: user }]), i), record: { labels: r.labels } };
    });
  }
  const records = readJsonLines(file, '{"prompt": "..."} or {"messages": [{"role", "content"}, ...]} (and any fields the reward reads)', (x) => {
    if (typeof x?.prompt === 'string' && x.prompt) return x as Record<string, unknown>;
    if (Array.isArray(x?.messages) && x.messages.length && x.messages.every((m: any) => typeof m?.role === 'string' && typeof m?.content === 'string')) return x as Record<string, unknown>;
    return 'expected a non-empty "prompt" string or a "messages" list of {"role", "content"}';
  });
  return records.map((r, i) => ({ ids: fit(typeof r.prompt === 'string' ? tok.encode(r.prompt) : chatPromptIds(tok, r.messages as Message[]), i), record: r }));
}

/**
 * A generation prompt's ids, refused when they leave fewer positions than the
 * answer may take: `what` names the prompt ("setwise: a prompt of 20 documents"),
 * `lower` the options that shrink it.
 */
export function fitPrompt(ids: number[], maxPositions: number, maxNewTokens: number, what: string, lower: string): number[] {
  const room = maxPositions - maxNewTokens;
  if (ids.length > room) throw new Error(`${what} takes ${ids.length} tokens; the model's ${maxPositions} positions leave ${room} beside --max-new-tokens ${maxNewTokens} (lower ${lower})`);
  return ids;
}
