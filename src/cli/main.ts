// The `lorakit` command.
import { Command, InvalidArgumentError, Option } from 'commander';
import { baseDtypeOption, int, list, num, positiveInt } from './parse.ts';
import cliProgress from 'cli-progress';
import { runClassificationJob, runEvalJob, JobUi } from '../tasks/classification.ts';
import { registerMergeExport } from './merge_export.ts';
import { registerExportGguf } from './export_gguf.ts';
import { registerExportRecipe } from './export_recipe.ts';
import { registerGenerate } from './generate.ts';
import { registerSummarize } from './summarize.ts';
import { collectMethodOption, givenConfigFlags, methodConfigFromFlags, methodDefaults, parseInitLoraWeights } from './method_options.ts';
import { METHODS } from '../adapters/registry.ts';
import { registerCompare } from './compare.ts';
import { registerLoram } from './loram.ts';
import { registerUnlearn } from './unlearn.ts';
import { registerSgLora } from './sg_lora.ts';
import { registerDemo } from './demo.ts';
import { registerRetrieval } from './retrieval.ts';
import { registerDuqgen } from './duqgen.ts';
import { registerQuantize } from './quantize.ts';
import { registerPlotRanks } from './plot_ranks.ts';
import { registerContinual } from './continual.ts';
import { runTrainJob, USE_DEFAULT_TARGETS } from '../tasks/train.ts';
import type { StartFromAdapter } from '../tasks/from_adapter.ts';
import { TASK_KINDS, type TaskKind } from '../train/task.ts';
import { RANK_LOSSES, type RankLoss } from '../train/tasks/rerank.ts';
import { OPTIMIZER_KINDS, type OptimizerSpec } from '../train/optimizers.ts';
import path from 'node:path';


function terminalUi(quiet: boolean): JobUi {
  let bar: cliProgress.SingleBar | null = null;
  return {
    info: (m) => console.log(m),
    startPhase(name, total) {
      if (quiet) return;
      bar = new cliProgress.SingleBar(
        { format: `${name.padEnd(22)} {bar} {value}/{total} | loss {loss} | {tps} tok/s | ETA {eta_formatted}`, hideCursor: true, noTTYOutput: true, notTTYSchedule: 10000 },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0, { loss: '-', tps: '-' });
    },
    advance(n) {
      bar?.increment(n);
    },
    step(s) {
      bar?.update(s.step, { loss: s.loss.toFixed(4), tps: Math.round(s.tokensPerSec) });
    },
    eval(e) {
      bar?.stop();
      const m = Object.entries(e.metrics).map(([k, v]) => `${k} ${k === 'accuracy' || k === 'mrr' || k === 'ndcg' ? `${(100 * v).toFixed(2)}%` : Number.isInteger(v) ? v : v.toFixed(4)}`).join(', ');
      console.log(`epoch ${e.epoch + 1}: validation ${m}${e.improved ? ' (best)' : ''}`);
      bar?.start(bar.getTotal(), Math.round(bar.getProgress() * bar.getTotal()), { loss: '-', tps: '-' });
    },
    endPhase() {
      bar?.stop();
      bar = null;
    },
  };
}

/** --method with --use-dora: LoRA + use_dora is lorakit's 'dora' method (as PEFT's LoraConfig(use_dora=True)). */
function trainMethod(method: string, useDora: boolean): string {
  if (!useDora) return method;
  if (method === 'lora' || method === 'dora') return 'dora';
  throw new InvalidArgumentError(`--use-dora applies to LoRA (--method lora), not ${method}`);
}

/**
 * The --optimizer spec. ALLoRA trains LoRA without dropout and without the α/r
 * scale (its paper): the config gets lora_alpha = r and lora_dropout 0, and
 * flags that say otherwise are refused.
 */
function optimizerSpec(o: Record<string, any>, method: string, flags: { alpha?: number; loraDropout?: number }, config: Record<string, unknown>): OptimizerSpec {
  switch (o.optimizer as OptimizerSpec['kind']) {
    case 'galore':
      return { kind: 'galore', rank: o.galoreRank, updateProjGap: o.galoreUpdateGap, scale: o.galoreScale };
    case 'allora': {
      if (method !== 'lora') throw new InvalidArgumentError(`--optimizer allora trains a LoRA: use --method lora, not ${method}`);
      const r = (config.r as number | undefined) ?? 8;
      if (flags.alpha !== undefined && flags.alpha !== r) throw new InvalidArgumentError(`--optimizer allora has no α/r scale: --alpha must equal --rank (${r}) or be left out`);
      if (flags.loraDropout) throw new InvalidArgumentError('--optimizer allora trains without dropout: leave out --lora-dropout');
      if (config.use_rslora) throw new InvalidArgumentError('--optimizer allora has no α/r scale: leave out --use-rslora');
      Object.assign(config, { lora_alpha: r, lora_dropout: 0 });
      return { kind: 'allora', eta: o.alloraEta };
    }
    default:
      return { kind: o.optimizer };
  }
}

/** --loss (the issue's name) or --rank-loss (kept for scripts that use it); both given must agree. */
function rankLoss(o: { loss?: RankLoss; rankLoss?: RankLoss; task: string }): RankLoss | undefined {
  if (o.loss && o.rankLoss && o.loss !== o.rankLoss) throw new InvalidArgumentError(`--loss ${o.loss} and --rank-loss ${o.rankLoss} disagree: give one`);
  const l = o.loss ?? o.rankLoss;
  if (l && o.task !== 'rerank') throw new InvalidArgumentError(`--loss ${l} is a ranking loss: it applies to --task rerank`);
  return l;
}

const TASK_DATA: Record<string, string> = {
  classification: "'imdb' (the bundled IMDB reviews, seeded split) or JSONL {\"text\", \"label\"}",
  'causal-lm': 'JSONL {"prompt", "completion"}, {"messages": [...]} or {"text"}',
  seq2seq: 'JSONL {"source", "target"}',
  rerank: 'JSONL {"query", "documents", "labels"} or {"query", "positive", "negatives"}',
  embed: 'JSONL {"anchor", "positive"}',
  mlm: 'JSONL {"text"} (masked-LM on a BERT folder with its MLM head: a language adapter)',
  grpo: 'prompts: with --reward rank-r1 or grouprank JSONL {"query", "documents" (≤ 20), "labels"}; with --reward <module.js> JSONL {"prompt"} or {"messages"} plus the fields the reward reads',
  align: 'JSONL {"source": "<sentence in the adapter\'s language>", "target": "<its English translation>"} (a language adapter: source embeddings pulled onto the base model\'s embeddings of the targets)',
};

export function makeProgram(): Command {
  const program = new Command('lorakit').description('Parameter-efficient fine-tuning (LoRA and friends) for TypeScript, on ONNX Runtime').showHelpAfterError();

  program
    .command('train')
    .description('Fine-tune a model with an adapter (any method) on a task; classification also compares with the frozen-encoder baseline')
    .addOption(new Option('--task <name>', 'what to train').choices([...TASK_KINDS]).default('classification'))
    .addOption(new Option('--model <name|dir>', "'use' = the bundled Universal Sentence Encoder lite, or a Hugging Face model folder: an encoder (BERT, RoBERTa, DistilBERT) for classification / rerank / embed, a decoder (GPT-2, Llama, Qwen2, Mistral) for causal-lm, T5 / BART for seq2seq").default('use'))
    .option('--data <imdb|file.jsonl>', `training data: ${Object.entries(TASK_DATA).map(([t, d]) => `${t}: ${d}`).join('; ')}`, 'imdb')
    .option('--validation <file.jsonl>', 'validation data in the task\'s format, evaluated every epoch (classification splits its own data)')
    .option('--method <name>', `adapter method (${Object.keys(METHODS).join(', ')})`, 'lora')
    .option('--full', 'full fine-tuning: train every weight of the model, no adapter; writes <out>/model (a Hugging Face folder for a folder model) instead of <out>/adapter')
    .option('--method-option <key=value>', 'a field of the method\'s config (repeatable), e.g. d_initial=0.05', collectMethodOption, {})
    .option('--target-modules <list>', `comma-separated module names/suffixes, a regex, or 'all-linear' (default: ${USE_DEFAULT_TARGETS.join(',')} on the bundled model, all-linear on a folder)`, list)
    .option('-r, --rank <r>', `rank r; default: the method's own (${methodDefaults('r')}; other methods size themselves with --method-option)`, int('--rank'))
    .option('--alpha <alpha>', `lora_alpha (LoRA scaling = alpha / r); default: ${methodDefaults('lora_alpha')} (PEFT's LoraConfig has 8)`, num('--alpha'))
    .option('--lora-dropout <p>', 'lora_dropout (PEFT LoraConfig; default 0)', num('--lora-dropout'))
    .addOption(new Option('--dropout <p>', 'same as --lora-dropout').argParser(num('--dropout')).hideHelp())
    .option('--use-rslora', 'rank-stabilized scaling alpha / sqrt(r) (PEFT use_rslora)')
    .addOption(new Option('--rslora', 'same as --use-rslora').hideHelp())
    .option('--use-dora', 'DoRA: weight-decomposed LoRA (PEFT use_dora; same as --method dora)')
    .option('--init-lora-weights <v>', 'PEFT init_lora_weights: true, false, gaussian, pissa, pissa_niter_<n>, olora', parseInitLoraWeights)
    .option('--loraplus-lr-ratio <x>', 'LoRA+: lora_B learns x times faster than lora_A (PEFT create_loraplus_optimizer; e.g. 16)', num('--loraplus-lr-ratio'))
    .option('--epochs <n>', 'training epochs', int('--epochs'), 2)
    .option('--lr <lr>', 'peak learning rate, every task: linear warmup from 0 over --warmup-ratio of the steps, then --schedule (linear decay to 0 by default; transformers\' get_*_schedule_with_warmup)', num('--lr'), 2e-3)
    .option('--weight-decay <x>', 'AdamW decoupled weight decay', num('--weight-decay'), 0.01)
    .option('--warmup-ratio <x>', 'linear warmup over this fraction of the steps', num('--warmup-ratio'), 0.06)
    .addOption(new Option('--schedule <kind>', 'learning rate after warmup').choices(['linear', 'cosine', 'constant']).default('linear'))
    .option('--max-grad-norm <x>', 'clip the global gradient norm (0 = off)', num('--max-grad-norm'), 1)
    .option('--head-lr-scale <x>', 'learning-rate multiplier for a new task head (classification, rerank)', num('--head-lr-scale'), 5)
    .addOption(new Option('--head-init <how>', "classification head start: 'random', or 'probe' = the frozen-encoder linear probe (LP-FT: training starts from the baseline)").choices(['random', 'probe']).default('random'))
    .addOption(new Option('--loss <kind>', "rerank: listwise (softmax cross-entropy over a query's candidates), pairwise (RankNet) or pointwise (binary cross-entropy per candidate; 1 positive : 4 negatives as in the cross-lingual ranking adapters)").choices([...RANK_LOSSES]))
    .addOption(new Option('--rank-loss <kind>', 'rerank: same as --loss').choices([...RANK_LOSSES]))
    .option('--embed-scale <x>', 'embed: similarity scale (1/temperature) of the in-batch contrastive loss', num('--embed-scale'), 20)
    .option('--batch <n>', 'batch size (rerank: queries per batch)', int('--batch'), 32)
    .option('--seed <n>', 'seed for init, batch order and dropout (the data split is fixed, the same for every seed)', int('--seed'), 42)
    .option('--out <dir>', 'output folder: adapter/, checkpoints/, metrics.jsonl, results.json', 'runs/default')
    .option('--max-train <n>', 'use at most N training examples (classification default 6000)', int('--max-train'))
    .option('--max-eval <n>', 'classification: use at most N validation and N test examples', int('--max-eval'), 1000)
    .option('--max-len <n>', 'truncate token sequences (default: 128 on encoders (USE reads at most 128), 256 for causal-lm, 512 for seq2seq sources)', int('--max-len'))
    .option('--max-target-len <n>', 'seq2seq: truncate targets', int('--max-target-len'), 128)
    .addOption(new Option('--optimizer <rule>', "update rule: adamw (default), sgd, galore (projected Adam on full weight matrices: with --full), lorapro (LoRA steps that follow full fine-tuning's AdamW step; --method lora; --max-grad-norm scales its adjusted step, as the official DeepSpeed step does), allora (LoRA with per-row 1/‖θ‖ gradient scaling; implies --lora-dropout 0 and --alpha = --rank, no α/r scale, as the paper says)").choices([...OPTIMIZER_KINDS]).default('adamw'))
    .option('--galore-rank <r>', 'GaLore: rank of the gradient projection', int('--galore-rank'), 128)
    .option('--galore-update-gap <T>', 'GaLore: steps between projector refreshes (an SVD of the gradient)', int('--galore-update-gap'), 200)
    .option('--galore-scale <x>', 'GaLore: factor on the projected-back update', num('--galore-scale'), 0.25)
    .option('--allora-eta <η>', 'ALLoRA: the gradient factor at θ = 0 (1/√(‖θ‖² + η⁻²) per row)', num('--allora-eta'), 2)
    .option('--checkpoint-every <n>', 'save a checkpoint every n steps (and at every epoch end)', int('--checkpoint-every'), 50)
    .option('--threads <n>', 'onnxruntime intra-op threads', int('--threads'))
    .option('--grad-checkpoint', 'gradient checkpointing: keep only each transformer sublayer\'s input from the forward pass and recompute the rest in the backward pass; far less activation memory at long sequences, about one more forward pass of time per step (same gradients)', false)
    .option('--low-memory', 'onnxruntime keeps one copy of each frozen weight instead of also a prepacked one (about the model\'s size less resident memory; slower matrix products: bench/RESULTS.md)', false)
    .addOption(baseDtypeOption())
    .option('--patience <n>', 'early stopping: epochs without validation improvement', int('--patience'))
    .option('--resume', 'continue from the last checkpoint in --out', false)
    .option('--from-adapter <dir>', "start from a saved PEFT adapter folder (lorakit's or PEFT's) instead of a fresh init: its config sets the method, rank, alpha and targets (a flag that disagrees is an error), its weights (and a saved task head) are loaded; the optimizer starts fresh (moments, schedule and step count are not in an adapter folder)")
    .option('--no-baseline', 'classification: skip the frozen-encoder baseline')
    .option('--monitor-norms', 'plot the LoRA-limits monitor over training: <out>/norms.svg (per attention layer, the largest entry of X·W* of Q, K, V against √(ln L); logged to metrics.jsonl in every run)')
    .option('--norms-every <n>', 'steps between the norm monitor\'s records in metrics.jsonl (≥ 1)', positiveInt('--norms-every'), 10)
    .addOption(new Option('--save-as <form>', "adapter/ as 'lora' (the plain PEFT LoRA a pruning method becomes, with rank_pattern; the method's own folder beside it as adapter_native/) or 'native'; default: lora for sora, codyra, adalora, increlora, diffora, bayesian-lora, native otherwise").choices(['lora', 'native']))
    .option('--reward <rank-r1|grouprank|module.js>', "grpo: the reward: rank-r1 (1 iff '<think>…</think> <answer>[k]</answer>' holds and document k is relevant, as Rank-R1's official code); grouprank (nDCG of the JSON scores' order + 0.5 × a distribution term: OUR READING of the paper, whose reward code is unreleased); or a module whose default export is (completion, record) => number", 'rank-r1')
    .option('--num-generations <G>', 'grpo: completions sampled per prompt (advantages are normalized within these G)', int('--num-generations'), 8)
    .option('--temperature <t>', 'grpo: sampling temperature', num('--temperature'), 1)
    .option('--max-new-tokens <n>', 'grpo: longest completion', int('--max-new-tokens'), 128)
    .option('--beta <β>', 'grpo: coefficient of the k3 KL penalty to the base model (the adapter disabled); 0 = none', num('--beta'), 0.04)
    .option('--epsilon <ε>', 'grpo: clipping range of the importance ratio', num('--epsilon'), 0.2)
    .option('--quiet', 'no progress bar', false)
    .action(async (o, cmd: Command) => {
      if (!(o.lr > 0)) throw new InvalidArgumentError(`--lr must be a positive number, got ${o.lr}`);
      const task = o.task as TaskKind;
      const method = trainMethod(o.method, !!o.useDora);
      if (o.loraplusLrRatio !== undefined && !(o.loraplusLrRatio > 0)) throw new InvalidArgumentError(`--loraplus-lr-ratio must be a positive number, got ${o.loraplusLrRatio}`);
      if (o.loraplusLrRatio !== undefined && method !== 'lora' && method !== 'dora') throw new InvalidArgumentError(`--loraplus-lr-ratio scales lora_B's learning rate: it needs --method lora or dora, not ${method}`);
      const flags = { rank: o.rank, alpha: o.alpha, loraDropout: o.loraDropout ?? o.dropout, useRslora: o.useRslora || o.rslora || undefined, initLoraWeights: o.initLoraWeights };
      if (o.full) {
        const adapterFlags = ['useDora', 'useRslora', 'rslora', 'initLoraWeights', 'loraplusLrRatio', 'rank', 'alpha', 'loraDropout', 'dropout', 'targetModules'].filter((k) => o[k] !== undefined && o[k] !== false);
        if (o.method !== 'lora' || Object.keys(o.methodOption).length || adapterFlags.length) {
          throw new InvalidArgumentError(`--full trains the weights themselves, with no adapter: leave out ${[...(o.method !== 'lora' ? ['--method'] : []), ...(Object.keys(o.methodOption).length ? ['--method-option'] : []), ...adapterFlags.map((k) => `--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`)].join(', ')}`);
        }
        if (o.optimizer === 'lorapro' || o.optimizer === 'allora') throw new InvalidArgumentError(`--optimizer ${o.optimizer} steps a LoRA; with --full use adamw, sgd or galore`);
        if (o.baseDtype !== 'fp32') throw new InvalidArgumentError(`--base-dtype ${o.baseDtype} quantizes the frozen base an adapter trains on; --full trains every weight (leave --base-dtype fp32)`);
      } else if (o.optimizer === 'galore') throw new InvalidArgumentError('--optimizer galore projects the gradients of full weight matrices: add --full');
      let fromAdapter: StartFromAdapter | undefined;
      if (o.fromAdapter !== undefined) {
        if (o.full) throw new InvalidArgumentError('--from-adapter continues an adapter; --full trains the weights themselves: give one of them');
        if (o.optimizer === 'allora') throw new InvalidArgumentError('--optimizer allora changes the adapter\'s config (alpha = r, no dropout): it cannot continue a saved adapter (--from-adapter)');
        fromAdapter = { dir: o.fromAdapter, given: givenConfigFlags(o, (k) => cmd.getOptionValueSource(k), method, flags) };
      }
      // With --from-adapter the adapter's own config is used; the flags are only checked against it.
      const methodConfig = fromAdapter ? {} : methodConfigFromFlags(method, flags, o.methodOption);
      const optimizer = optimizerSpec(o, method, flags, methodConfig);
      const ui = terminalUi(o.quiet);
      const t0 = performance.now();
      if (task !== 'classification') {
        if (o.data === 'imdb') throw new InvalidArgumentError(`--task ${task} needs --data <file.jsonl>: ${TASK_DATA[task]}`);
        if (o.model === 'use' && (task === 'causal-lm' || task === 'seq2seq' || task === 'grpo')) {
          throw new InvalidArgumentError(`--task ${task} needs --model <dir>: ${task !== 'seq2seq' ? 'a Hugging Face decoder folder (GPT-2, Llama, Qwen2, Mistral)' : 'a T5 or BART folder'}`);
        }
        const r = await runTrainJob({
          task, model: o.model, baseDtype: o.baseDtype, data: o.data, validation: o.validation, method, methodConfig, targetModules: o.targetModules,
          epochs: o.epochs, lr: o.lr, batchSize: o.batch, seed: o.seed, out: o.out, maxTrain: o.maxTrain, maxLen: o.maxLen, maxTargetLen: o.maxTargetLen,
          threads: o.threads, resume: o.resume, patience: o.patience, weightDecay: o.weightDecay, warmupRatio: o.warmupRatio, schedule: o.schedule,
          maxGradNorm: o.maxGradNorm || undefined, checkpointEvery: o.checkpointEvery, gradCheckpoint: o.gradCheckpoint, prepackWeights: !o.lowMemory, loraplusLrRatio: o.loraplusLrRatio, headLrScale: o.headLrScale,
          rankLoss: rankLoss(o), embedScale: o.embedScale, optimizer, full: !!o.full, saveAs: o.saveAs, normsEvery: o.normsEvery, monitorNorms: !!o.monitorNorms, fromAdapter,
          reward: o.reward, numGenerations: o.numGenerations, temperature: o.temperature, maxNewTokens: o.maxNewTokens, beta: o.beta, epsilon: o.epsilon,
        }, ui);
        if (r.meanRewardPerEpoch) console.log(`\nGRPO: mean reward per epoch ${r.meanRewardPerEpoch.map((x) => x.toFixed(3)).join(' → ')}`);
        const losses = r.epochLosses.map((l) => l.toFixed(4)).join(' → ');
        console.log(`\n${r.examples.train} training examples, ${r.trainableParams} trainable parameters, ${r.steps} steps; mean training loss per epoch ${losses}`);
        if (r.validation) console.log(`validation: ${Object.entries(r.validation).map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`).join(', ')}`);
        console.log(`${r.fineTuning === 'full' ? 'model' : 'adapter'}: ${r.adapterDir}  metrics: ${path.join(o.out, 'metrics.jsonl')}  total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
        return;
      }
      if (o.validation) throw new InvalidArgumentError('--validation: classification makes its own seeded validation and test splits from --data');
      const res = await runClassificationJob(
        {
          model: o.model,
          baseDtype: o.baseDtype,
          data: o.data,
          method,
          methodConfig,
          loraplusLrRatio: o.loraplusLrRatio,
          targetModules: o.targetModules,
          epochs: o.epochs,
          lr: o.lr,
          headLrScale: o.headLrScale,
          batchSize: o.batch,
          seed: o.seed,
          out: o.out,
          maxTrain: o.maxTrain ?? 6000,
          maxEval: o.maxEval,
          maxLen: o.maxLen ?? 128,
          threads: o.threads,
          resume: o.resume,
          baseline: o.baseline,
          headInit: o.headInit,
          patience: o.patience,
          weightDecay: o.weightDecay,
          warmupRatio: o.warmupRatio,
          schedule: o.schedule,
          maxGradNorm: o.maxGradNorm || undefined,
          checkpointEvery: o.checkpointEvery,
          gradCheckpoint: o.gradCheckpoint,
          prepackWeights: !o.lowMemory,
          optimizer,
          full: !!o.full,
          normsEvery: o.normsEvery,
          monitorNorms: !!o.monitorNorms,
          saveAs: o.saveAs,
          fromAdapter,
        },
        ui,
      );
      console.log(`\nTest split: ${res.split.test} examples (trained on ${res.split.train}, validated on ${res.split.validation})`);
      console.table(res.rows.map((r) => ({ system: r.system, 'test accuracy %': +(100 * r.testAccuracy).toFixed(2), 'trainable params': r.trainableParams, 'wall time s': +r.seconds.toFixed(1) })));
      console.log(`${o.full ? 'model' : 'adapter'}: ${res.adapterDir}  metrics: ${o.out}/metrics.jsonl  total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    });

  program
    .command('eval')
    .description('Evaluate a saved adapter (from lorakit train) on a data split')
    .requiredOption('--adapter <dir>', 'adapter folder (adapter_config.json + adapter_model.safetensors)')
    .addOption(new Option('--data <imdb|file.jsonl>', 'data set').default('imdb'))
    .addOption(new Option('--split <name>', 'which split').choices(['test', 'validation']).default('test'))
    .option('--max-eval <n>', 'use at most N examples', int('--max-eval'))
    .option('--threads <n>', 'onnxruntime intra-op threads', int('--threads'))
    .option('--rank <b>', 'evaluate at rank b without retraining: a DyLoRA adapter at its rank b, a LoRA truncated to its first b components', int('--rank'))
    .addOption(baseDtypeOption())
    .action(async (o) => {
      const r = await runEvalJob({ adapter: o.adapter, baseDtype: o.baseDtype, data: o.data, split: o.split, maxEval: o.maxEval, threads: o.threads, rank: o.rank });
      console.log(`${o.split}${o.rank !== undefined ? ` at rank ${o.rank}` : ''}: accuracy ${(100 * r.accuracy).toFixed(2)}% (loss ${r.loss.toFixed(4)}) on ${r.n} examples`);
    });

  registerGenerate(program);
  registerSummarize(program);
  registerCompare(program);
  registerPlotRanks(program);
  registerContinual(program);
  registerMergeExport(program);
  registerExportGguf(program);
  registerLoram(program);
  registerUnlearn(program);
  registerSgLora(program);
  registerDemo(program);
  registerExportRecipe(program);
  registerRetrieval(program, terminalUi);
  registerDuqgen(program, terminalUi);
  registerQuantize(program);

  return program;
}

const isMain = process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!);
if (isMain) {
  makeProgram()
    .parseAsync(process.argv)
    .catch((e: Error) => {
      console.error(`lorakit: ${e.message}`);
      if (process.env.LORAKIT_DEBUG) console.error(e.stack);
      process.exit(1);
    });
}
