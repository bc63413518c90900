// `lorakit train --task causal-lm`: the train command's options mapped onto
// runCausalLmJob (src/tasks/causal_lm.ts) for Hugging Face decoder folders.

import { runCausalLmJob } from '../tasks/causal_lm.ts';

/** The classification default of --target-modules (USE module names); causal-lm then uses 'all-linear'. */
const CLASSIFICATION_DEFAULT = ['qkv', 'output', 'conv1', 'conv2'];

export async function trainCausalLmCli(o: Record<string, any>): Promise<void> {
  if (o.model === 'use') throw new Error("--task causal-lm needs --model <dir>: a Hugging Face decoder folder (GPT-2, Llama, Qwen2, Mistral)");
  if (o.data === 'imdb') throw new Error('--task causal-lm needs --data <file.jsonl> with {"prompt","completion"}, {"messages"} or {"text"} lines');
  const tm = o.targetModules;
  const targetModules = Array.isArray(tm) && tm.join(',') === CLASSIFICATION_DEFAULT.join(',') ? 'all-linear' : tm;
  const t0 = performance.now();
  const every = o.quiet ? Infinity : 10;
  const r = await runCausalLmJob({
    model: o.model, data: o.data, out: o.out, targetModules, rank: o.rank, alpha: o.alpha, dropout: o.dropout,
    epochs: o.epochs, lr: o.lr, batchSize: o.batch, maxLength: o.maxLen, seed: o.seed, threads: o.threads,
    onStep: (s) => {
      if ((s.step + 1) % every === 0 || s.step + 1 === s.totalSteps) console.log(`step ${s.step + 1}/${s.totalSteps}  loss ${s.loss.toFixed(4)}  ${s.ms.toFixed(0)} ms`);
    },
  });
  console.log(
    `${r.examples} examples, ${r.trainableParams} trainable parameters; mean loss first epoch ${r.firstEpochLoss.toFixed(4)} → last epoch ${r.lastEpochLoss.toFixed(4)}`,
  );
  console.log(`adapter: ${r.adapterDir}  total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
