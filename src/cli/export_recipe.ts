// `lorakit export-recipe --engine torchrun|accelerate`: a causal-LM LoRA run
// written out for PyTorch DDP (torchrun) or Hugging Face accelerate, with the
// train flags lorakit train takes for it (src/tasks/recipe/export.ts).
import { Command, InvalidArgumentError, Option } from 'commander';
import { int, list, num } from './parse.ts';
import { givenConfigFlags, methodConfigFromFlags, parseInitLoraWeights } from './method_options.ts';
import { exportRecipe } from '../tasks/recipe/export.ts';

export function registerExportRecipe(program: Command): void {
  program
    .command('export-recipe')
    .description('Write a causal-LM LoRA / DoRA run for a cluster engine (torchrun / accelerate): the step-0 adapter, the data as token ids, recipe.json with every setting, train.py and launch.sh; the trained adapter comes back to lorakit as a PEFT folder')
    .addOption(new Option('--engine <name>', 'how launch.sh starts the processes').choices(['torchrun', 'accelerate']).makeOptionMandatory())
    .requiredOption('--model <dir>', 'Hugging Face decoder folder (GPT-2, Llama, Qwen2, Mistral)')
    .requiredOption('--data <file.jsonl>', 'JSONL {"prompt", "completion"}, {"messages": [...]} or {"text"} (as lorakit train --task causal-lm)')
    .requiredOption('--out <dir>', 'the recipe folder')
    .option('--nproc <n>', 'processes per node launch.sh starts (NPROC overrides it)', int('--nproc'), 2)
    .option('--nnodes <n>', 'nodes launch.sh runs on (NNODES overrides it); the batch arithmetic is for nproc × nnodes processes', int('--nnodes'), 1)
    .option('--per-rank-batch <n>', 'rows a process runs at once (its share of a global batch beyond that is gradient accumulation; default: the whole share)', int('--per-rank-batch'))
    .addOption(new Option('--backend <kind>', "train.py's model: plain (torch only, the reference decoders) or peft (transformers + PEFT); default plain for torchrun, peft for accelerate").choices(['plain', 'peft']))
    .addOption(new Option('--deepspeed <stage>', 'with --engine accelerate: train through DeepSpeed ZeRO stage 2 or 3 (ds_config.json; needs deepspeed and GPUs where it runs)').choices(['zero2', 'zero3']))
    .option('--from-adapter <dir>', 'step 0 is this saved LoRA adapter folder (its config; the optimizer starts fresh) instead of a seeded init')
    .option('--target-modules <list>', "comma-separated module names/suffixes, a regex, or 'all-linear' (default)", list)
    .option('-r, --rank <r>', 'LoRA rank (default 8)', int('--rank'))
    .option('--alpha <alpha>', 'lora_alpha (default 16, as lorakit train)', num('--alpha'))
    .option('--lora-dropout <p>', 'lora_dropout (default 0; a replay of lorakit\'s steps needs 0: torch draws its own masks)', num('--lora-dropout'))
    .option('--use-rslora', 'scaling alpha / sqrt(r)')
    .option('--use-dora', 'DoRA: weight-decomposed LoRA (PEFT use_dora)')
    .option('--init-lora-weights <v>', 'PEFT init_lora_weights: true, false, gaussian (PiSSA / OLoRA change the base weights: not for a recipe)', parseInitLoraWeights)
    .option('--epochs <n>', 'training epochs', int('--epochs'), 2)
    .option('--lr <lr>', 'peak learning rate: linear warmup over --warmup-ratio, then --schedule (as lorakit train)', num('--lr'), 2e-3)
    .option('--weight-decay <x>', 'AdamW decoupled weight decay', num('--weight-decay'), 0.01)
    .option('--warmup-ratio <x>', 'linear warmup over this fraction of the steps', num('--warmup-ratio'), 0.06)
    .addOption(new Option('--schedule <kind>', 'learning rate after warmup').choices(['linear', 'cosine', 'constant']).default('linear'))
    .option('--max-grad-norm <x>', 'clip the global gradient norm (0 = off)', num('--max-grad-norm'), 1)
    .option('--batch <n>', 'global batch size (over all processes)', int('--batch'), 32)
    .option('--seed <n>', 'seed of the init and of the batch order', int('--seed'), 42)
    .option('--max-train <n>', 'use at most N training examples', int('--max-train'))
    .option('--max-len <n>', 'truncate token sequences', int('--max-len'), 256)
    .action(async (o, cmd: Command) => {
      if (!(o.lr > 0)) throw new InvalidArgumentError(`--lr must be a positive number, got ${o.lr}`);
      const flags = { rank: o.rank, alpha: o.alpha, loraDropout: o.loraDropout, useRslora: o.useRslora || undefined, initLoraWeights: o.initLoraWeights };
      const method = o.useDora ? 'dora' : 'lora';
      const fromAdapter = o.fromAdapter !== undefined ? { dir: o.fromAdapter, given: givenConfigFlags({ ...o, methodOption: {} }, (k) => cmd.getOptionValueSource(k), method, flags) } : undefined;
      const r = await exportRecipe({
        engine: o.engine, model: o.model, data: o.data, out: o.out, nproc: o.nproc, nnodes: o.nnodes, perRankBatch: o.perRankBatch, backend: o.backend, deepspeed: o.deepspeed,
        method, methodConfig: fromAdapter ? {} : methodConfigFromFlags(method, flags, {}), targetModules: o.targetModules, fromAdapter,
        epochs: o.epochs, lr: o.lr, batchSize: o.batch, seed: o.seed, weightDecay: o.weightDecay, warmupRatio: o.warmupRatio, schedule: o.schedule,
        maxGradNorm: o.maxGradNorm, maxTrain: o.maxTrain, maxLen: o.maxLen,
      });
      const b = r.recipe.batch;
      console.log(`${r.dir}: ${r.recipe.data.examples} examples, ${r.recipe.total_steps} steps (${r.recipe.epochs} epochs × ${r.recipe.steps_per_epoch}); global batch ${b.global_batch} = ${b.world_size} processes × ${b.per_rank_batch} rows × ${b.grad_accum_steps} accumulation step(s)`);
      if (r.recipe.deepspeed) console.log(`DeepSpeed ZeRO stage ${r.recipe.deepspeed.zero_stage}: ${r.dir}/${r.recipe.deepspeed.config_file} (micro batch ${b.per_rank_batch}, accumulation ${b.grad_accum_steps}, clipping ${r.recipe.clip.max_grad_norm}, float32)`);
      console.log(`run: sh ${r.dir}/launch.sh   (NPROC, NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT, PYTHON from the environment); the adapter lands in ${r.dir}/out/adapter`);
    });
}
