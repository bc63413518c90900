// `lorakit loram prune` and `lorakit loram recover`: LoRAM's train-small,
// infer-large workflow (src/workflows/loram/). Between them the user trains
// a LoRA on the pruned folder with `lorakit train --task causal-lm --model <pruned>`.

import { Command, InvalidArgumentError, Option } from 'commander';
import { int, num, positiveInt } from './parse.ts';
import { runLoramPrune } from '../workflows/loram/prune.ts';
import { runLoramRecover } from '../workflows/loram/recover.ts';

/** '4-29', '0,3,5' or '2-4,7' → layer indices. */
export function parseLayers(v: string): number[] {
  const out: number[] = [];
  for (const part of v.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new InvalidArgumentError(`--layers takes indices and ranges such as '4-29' or '0,2,5', got '${v}'`);
    const a = Number(m[1]), b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new InvalidArgumentError(`--layers: range '${part}' ends before it starts`);
    for (let i = a; i <= b; i++) out.push(i);
  }
  if (!out.length) throw new InvalidArgumentError('--layers: no layer given');
  return out;
}

const ratio = (name: string) => (v: string) => {
  const x = num(name)(v);
  if (!(x >= 0 && x < 1)) throw new InvalidArgumentError(`${name} is the fraction removed, in [0, 1), got '${v}'`);
  return x;
};

export function registerLoram(program: Command): void {
  const loram = program.command('loram').description('LoRAM (train small, infer large): prune a model, train a LoRA on the pruned one, recover it for the original');

  loram
    .command('prune')
    .description('Structured pruning of a Llama / Qwen2 / Mistral folder: remove the least important FFN neurons and attention heads (KV heads with their query heads) per layer')
    .requiredOption('--model <dir>', 'the original Hugging Face folder')
    .requiredOption('--out <dir>', 'the pruned model folder to write (config.json, model.safetensors, loram.json, tokenizer)')
    .option('--ratio <x>', 'fraction of FFN neurons and of KV-head groups removed in each pruned layer', ratio('--ratio'), 0.5)
    .option('--ffn-ratio <x>', 'fraction of FFN neurons removed (overrides --ratio)', ratio('--ffn-ratio'))
    .option('--attn-ratio <x>', 'fraction of KV-head groups removed (overrides --ratio)', ratio('--attn-ratio'))
    .option('--layers <list>', "layers to prune, e.g. '4-29' (LLM-Pruner's and LoRAM's practice keeps the first and last layers); default: all (a plain Hugging Face config)", parseLayers)
    .addOption(new Option('--importance <kind>', "taylor: LLM-Pruner's first-order Taylor |W·∂L/∂W| on --data; magnitude: W²; random: LoRAM's randomly structured variant").choices(['taylor', 'magnitude', 'random']).default('taylor'))
    .option('--data <file.jsonl>', 'calibration text for --importance taylor (causal-LM JSONL: {"text"}, {"prompt","completion"} or {"messages"})')
    .option('--calibration-size <n>', 'calibration examples (LLM-Pruner uses 10)', positiveInt('--calibration-size'), 10)
    .option('--max-len <n>', 'tokens per calibration example (LLM-Pruner uses 64)', positiveInt('--max-len'), 64)
    .option('--seed <n>', 'seed of the calibration sample and of --importance random', int('--seed'), 0)
    .option('--threads <n>', 'onnxruntime intra-op threads', int('--threads'))
    .action(async (o) => {
      const r = await runLoramPrune(
        {
          model: o.model, out: o.out, ffnRatio: o.ffnRatio ?? o.ratio, attnRatio: o.attnRatio ?? o.ratio, layers: o.layers, importance: o.importance,
          data: o.data, calibrationSize: o.calibrationSize, maxLen: o.maxLen, seed: o.seed, threads: o.threads,
        },
        { info: (m) => console.log(m), startPhase: (n) => console.log(`${n}…`), step() {}, eval() {}, endPhase() {} },
      );
      console.log(`pruned model: ${r.out} (plan: ${r.out}/loram.json). Next: lorakit train --task causal-lm --model ${r.out} --data <train.jsonl> --out <run>, then lorakit loram recover --adapter <run>/adapter --pruned ${r.out} --out <adapter for ${o.model}>`);
    });

  loram
    .command('recover')
    .description("Turn a LoRA trained on a pruned model into a LoRA for the original model (LoRAM's recovery: zeros at the pruned positions)")
    .requiredOption('--adapter <dir>', 'the LoRA adapter folder trained on the pruned model')
    .requiredOption('--pruned <dir>', 'the pruned model folder (written by lorakit loram prune; its loram.json)')
    .requiredOption('--out <dir>', 'the recovered adapter folder (PEFT files; base_model_name_or_path = the original model)')
    .addOption(new Option('--fill <how>', "zero: the official zeroA (ΔW is 0 at pruned positions); normA: the pruned lora_A columns of o/down from N(0, 1/r²)").choices(['zero', 'normA']).default('zero'))
    .option('--seed <n>', 'seed of --fill normA', int('--seed'), 0)
    .action((o) => {
      const r = runLoramRecover({ adapter: o.adapter, pruned: o.pruned, out: o.out, fill: o.fill, seed: o.seed });
      console.log(`recovered adapter: ${r.out} (${r.changed} tensors padded back to the original widths) for ${r.plan.original.model}`);
      console.log(`use it: lorakit generate --model ${r.plan.original.model} --adapter ${r.out} --prompt "..."`);
    });
}
