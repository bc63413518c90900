// Causal-LM fine-tuning job (what `lorakit train --task causal-lm` runs): a
// Hugging Face decoder folder + JSONL data → a PEFT LoRA adapter folder.
//
// Data, one JSON object a line (blank lines skipped):
//   {"prompt": "...", "completion": "..."}   loss on the completion only
//   {"messages": [{"role": ..., "content": ...}, ...]}   chat template of the
//        model's tokenizer_config.json; loss on the last (assistant) message
//   {"text": "..."}                           loss on every token
// Completions, texts and chat turns end with the tokenizer's EOS token (added
// unless the chat template already ends with it), so the model learns to stop.

import fs from 'node:fs';
import { AdapterSet } from '../adapters/inject.ts';
import { lora } from '../adapters/lora/index.ts';
import { loraConfigSchema } from '../adapters/lora/config.ts';
import type { TargetModules } from '../adapters/targets.ts';
import type { ChatMessage, HfTokenizer } from '../io/hf.ts';
import { loadDecoderFolder } from '../models/load_decoder.ts';
import { saveAdapter } from '../peft/adapter_files.ts';
import { CausalLmBatch, CausalLmExample, makeCausalLmBatch, trainCausalLm } from '../train/causal_lm.ts';
import { Rng } from '../util/rng.ts';

export type CausalLmRecord = { prompt: string; completion: string } | { messages: ChatMessage[] } | { text: string };

const VALID = '{"prompt": "...", "completion": "..."}  or  {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}  or  {"text": "..."}';

/** Reads causal-LM JSONL; every problem names file:line and shows a valid line. */
export function readCausalLmJsonl(file: string): CausalLmRecord[] {
  if (!fs.existsSync(file)) throw new Error(`${file}: not found`);
  const out: CausalLmRecord[] = [];
  const problems: string[] = [];
  fs.readFileSync(file, 'utf8').split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    const at = `${file}:${i + 1}`;
    let o: any;
    try {
      o = JSON.parse(line);
    } catch (e) {
      problems.push(`${at}: not valid JSON (${(e as Error).message})`);
      return;
    }
    if (typeof o?.prompt === 'string' && typeof o?.completion === 'string') out.push({ prompt: o.prompt, completion: o.completion });
    else if (Array.isArray(o?.messages) && o.messages.length > 0 && o.messages.every((m: any) => typeof m?.role === 'string' && typeof m?.content === 'string')) {
      if (o.messages[o.messages.length - 1].role !== 'assistant') problems.push(`${at}: the last message must be the assistant's (it is what the model learns)`);
      else out.push({ messages: o.messages });
    } else if (typeof o?.text === 'string') out.push({ text: o.text });
    else problems.push(`${at}: expected "prompt"+"completion" strings, a "messages" list of {role, content}, or a "text" string`);
  });
  if (problems.length) throw new Error(`${problems.slice(0, 10).join('\n')}\nA valid line looks like: ${VALID}`);
  if (out.length === 0) throw new Error(`${file}: no examples`);
  return out;
}

/** Token ids with the prompt part marked (its labels become −100); truncated to maxLength. */
export function encodeCausalLm(records: CausalLmRecord[], tok: HfTokenizer, maxLength: number): CausalLmExample[] {
  const eos = tok.eosTokenId !== undefined ? [tok.eosTokenId] : [];
  const out: CausalLmExample[] = [];
  for (const r of records) {
    let ids: number[], promptLength: number;
    if ('text' in r) {
      ids = [...tok.encode(r.text), ...eos];
      promptLength = 0;
    } else if ('prompt' in r) {
      const p = tok.encode(r.prompt);
      ids = [...p, ...tok.encode(r.completion, { addSpecialTokens: false }), ...eos];
      promptLength = p.length;
    } else {
      const p = tok.encode(tok.applyChatTemplate(r.messages.slice(0, -1), { addGenerationPrompt: true }), { addSpecialTokens: false });
      ids = tok.encode(tok.applyChatTemplate(r.messages), { addSpecialTokens: false });
      if (eos.length && ids[ids.length - 1] !== eos[0]) ids.push(eos[0]); // templates that do not close the turn with EOS
      promptLength = p.length;
      if (!p.every((t, i) => ids[i] === t)) promptLength = 0; // template renders the prompt differently in context: train on all
    }
    ids = ids.slice(0, maxLength);
    if (ids.length > promptLength && ids.length >= 2) out.push({ ids, promptLength: Math.min(promptLength, ids.length) });
  }
  return out;
}

export interface CausalLmJob {
  model: string;
  data: string;
  out?: string;
  targetModules?: TargetModules;
  rank?: number;
  alpha?: number;
  dropout?: number;
  epochs?: number;
  lr?: number;
  batchSize?: number;
  maxLength?: number;
  seed?: number;
  threads?: number;
  onStep?: (info: { step: number; totalSteps: number; loss: number; ms: number }) => void;
}

export interface CausalLmJobResult {
  examples: number;
  trainableParams: number;
  losses: number[];
  /** Mean training loss of the first and of the last epoch. */
  firstEpochLoss: number;
  lastEpochLoss: number;
  adapterDir?: string;
}

export async function runCausalLmJob(job: CausalLmJob): Promise<CausalLmJobResult> {
  const { model, tokenizer } = await loadDecoderFolder(job.model);
  if (!tokenizer) throw new Error(`${job.model}/tokenizer.json: not found; causal-LM training needs the model's tokenizer`);
  const examples = encodeCausalLm(readCausalLmJsonl(job.data), tokenizer, job.maxLength ?? 256);
  if (examples.length === 0) throw new Error(`${job.data}: no example has a completion token left after truncation to ${job.maxLength ?? 256} tokens`);
  const seed = job.seed ?? 0;
  const config = loraConfigSchema.parse({ r: job.rank ?? 8, lora_alpha: job.alpha ?? 16, lora_dropout: job.dropout ?? 0 });
  const adapters = new AdapterSet(lora, config, model.sites, model.weights, { targetModules: job.targetModules ?? 'all-linear', headNames: model.headNames, seed });
  const epochs = job.epochs ?? 1, bs = job.batchSize ?? 8;
  const pad = tokenizer.padTokenId ?? tokenizer.eosTokenId ?? 0;
  const batches: CausalLmBatch[] = [];
  for (let e = 0; e < epochs; e++) {
    const order = new Rng(seed).fork(`epoch-${e}`).permutation(examples.length);
    for (let i = 0; i < order.length; i += bs) batches.push(makeCausalLmBatch(order.slice(i, i + bs).map((j) => examples[j]), pad));
  }
  const losses = await trainCausalLm(model, adapters, batches, {
    lr: job.lr ?? 2e-4, steps: batches.length, seed, threads: job.threads,
    onStep: (s) => job.onStep?.({ ...s, totalSteps: batches.length }),
  });
  const per = Math.ceil(examples.length / bs);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  let adapterDir: string | undefined;
  if (job.out) {
    saveAdapter(job.out, adapters, { baseModel: job.model, taskType: 'CAUSAL_LM' });
    adapterDir = job.out;
  }
  return {
    examples: examples.length, trainableParams: adapters.trainableCount(), losses,
    firstEpochLoss: mean(losses.slice(0, per)), lastEpochLoss: mean(losses.slice(-per)), adapterDir,
  };
}
