// `lorakit generate`: text generation with a Hugging Face decoder folder
// (GPT-2, Llama, Qwen2, Mistral) or an encoder-decoder (T5, BART), optionally
// with an adapter of any method (merged into the weights where it can be,
// else run as its own sub-graph), greedy or sampled, with the KV cache.

import { Command, InvalidArgumentError } from 'commander';
import { baseDtypeOption, int, num } from './parse.ts';
import type { AdapterSet } from '../adapters/inject.ts';
import { Generator, GenerateResult } from '../serve/generate.ts';
import { Seq2SeqGenerator } from '../serve/seq2seq_generate.ts';
import { loadModel } from '../models/load.ts';
import type { DecoderModel } from '../models/decoder.ts';
import type { Seq2SeqModel } from '../models/seq2seq.ts';
import { loadPeftAdapter } from '../peft/adapter_files.ts';
import type { BaseDtype } from '../quant/base_dtype.ts';

export interface GenerateJob {
  model: string;
  /** The form of the frozen base's linear weights (src/quant/): default fp32. */
  baseDtype?: BaseDtype;
  adapter?: string;
  prompt?: string;
  /** Token ids instead of text (folders without tokenizer.json). */
  promptIds?: number[];
  /** Wrap the prompt as one user message in tokenizer_config.json's chat template. */
  chat?: boolean;
  maxNewTokens?: number;
  sample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  cache?: boolean;
  threads?: number;
}

/** An adapter folder of any method (PEFT format, written by PEFT or lorakit) on the model. */
export function loadAdapterFor(model: DecoderModel | Seq2SeqModel, dir: string): AdapterSet {
  return loadPeftAdapter(model, dir, { headNames: model.headNames }).set;
}

export async function runGenerate(job: GenerateJob): Promise<GenerateResult & { text?: string; promptIds: number[] }> {
  const loaded = await loadModel(job.model, undefined, { baseDtype: job.baseDtype });
  if (loaded.kind === 'encoder') throw new Error(`${job.model}: an encoder does not generate text; give a decoder (GPT-2, Llama, Qwen2, Mistral) or T5 / BART folder`);
  const { model, tokenizer } = loaded;
  let promptIds = job.promptIds;
  if (!promptIds) {
    if (job.prompt === undefined) throw new InvalidArgumentError('give --prompt "text" (or --prompt-ids 1,2,3)');
    if (!tokenizer) throw new Error(`${job.model}/tokenizer.json: not found; pass token ids with --prompt-ids`);
    const text = job.chat ? tokenizer.applyChatTemplate([{ role: 'user', content: job.prompt }], { addGenerationPrompt: true }) : job.prompt;
    promptIds = tokenizer.encode(text, { addSpecialTokens: !job.chat });
  }
  const adapters = job.adapter ? loadAdapterFor(model, job.adapter) : null;
  const stop = new Set(model.config.eosTokenIds);
  if (tokenizer?.eosTokenId !== undefined) stop.add(tokenizer.eosTokenId);
  const sampling = { doSample: job.sample ?? false, temperature: job.temperature, topK: job.topK, topP: job.topP, seed: job.seed, useCache: job.cache ?? true };
  if (loaded.kind === 'seq2seq') {
    const gen = new Seq2SeqGenerator(loaded.model, adapters, { threads: job.threads });
    try {
      const t0 = performance.now();
      const [tokens] = await gen.generate([promptIds], { ...sampling, maxNewTokens: job.maxNewTokens ?? 32, stopTokens: [...stop] });
      const ms = performance.now() - t0;
      const finish = tokens.length && stop.has(tokens[tokens.length - 1]) ? 'stop' : 'length';
      return { tokens, finish, prefillMs: 0, decodeMs: ms, stepMs: [], text: tokenizer?.decode(tokens, { skipSpecialTokens: true }), promptIds };
    } finally {
      await gen.release();
    }
  }
  const gen = new Generator(loaded.model, adapters, { threads: job.threads });
  try {
    await gen.warm(job.cache ?? true);
    const r = await gen.generate(promptIds, { ...sampling, maxNewTokens: job.maxNewTokens ?? 32, stopTokens: [...stop] });
    const text = tokenizer?.decode(r.tokens, { skipSpecialTokens: true });
    return { ...r, text, promptIds };
  } finally {
    await gen.release();
  }
}

export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .description('Generate text with a Hugging Face decoder (GPT-2, Llama, Qwen2, Mistral) or T5 / BART folder, optionally with an adapter')
    .requiredOption('--model <dir>', 'Hugging Face model folder (config.json, model.safetensors, tokenizer.json)')
    .option('--adapter <dir>', 'adapter folder of any method (PEFT files, e.g. runs/x/adapter from lorakit train)')
    .option('--prompt <text>', 'prompt text')
    .option('--prompt-ids <ids>', 'prompt as comma-separated token ids', (v) => v.split(',').map((s) => int('--prompt-ids')(s.trim())))
    .option('--chat', "apply tokenizer_config.json's chat template to the prompt", false)
    .option('--max-new-tokens <n>', 'tokens to generate at most', int('--max-new-tokens'), 32)
    .option('--sample', 'sample instead of greedy decoding', false)
    .option('--temperature <t>', 'sampling temperature', num('--temperature'), 1)
    .option('--top-k <k>', 'keep the k most likely tokens (0 = off)', int('--top-k'), 0)
    .option('--top-p <p>', 'nucleus sampling threshold (1 = off)', num('--top-p'), 1)
    .option('--seed <n>', 'sampling seed', int('--seed'), 0)
    .option('--no-cache', 'recompute the whole prefix for every token (no KV cache)')
    .option('--threads <n>', 'onnxruntime intra-op threads', int('--threads'))
    .addOption(baseDtypeOption())
    .action(async (o) => {
      const r = await runGenerate({
        model: o.model, baseDtype: o.baseDtype, adapter: o.adapter, prompt: o.prompt, promptIds: o.promptIds, chat: o.chat, maxNewTokens: o.maxNewTokens,
        sample: o.sample, temperature: o.temperature, topK: o.topK, topP: o.topP, seed: o.seed, cache: o.cache, threads: o.threads,
      });
      console.log(r.text ?? r.tokens.join(' '));
      const decodeN = r.tokens.length - 1;
      console.error(
        `[${r.tokens.length} tokens, ${r.finish}; prompt ${r.promptIds.length} tokens in ${r.prefillMs.toFixed(1)} ms` +
          (decodeN > 0 ? `, ${(decodeN / (r.decodeMs / 1000)).toFixed(1)} tokens/s after the first` : '') + ']',
      );
    });
}
