// The `lorakit` command.
import { Command, InvalidArgumentError, Option } from 'commander';
import { int, list, num } from './parse.ts';
import cliProgress from 'cli-progress';
import { runClassificationJob, runEvalJob, JobUi } from '../tasks/classification.ts';
import { registerMergeExport } from './merge_export.ts';
import { registerGenerate } from './generate.ts';
import { collectMethodOption, methodConfigFromFlags, methodDefaults, parseInitLoraWeights } from './method_options.ts';
import { METHODS } from '../adapters/registry.ts';
import { registerCompare } from './compare.ts';
import { trainCausalLmCli } from './causal_lm.ts';


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
    step(s) {
      bar?.update(s.step, { loss: s.loss.toFixed(4), tps: Math.round(s.tokensPerSec) });
    },
    epoch(e) {
      bar?.stop();
      console.log(`epoch ${e.epoch + 1}: validation accuracy ${(100 * e.valAccuracy).toFixed(2)}% loss ${e.valLoss.toFixed(4)}${e.improved ? ' (best)' : ''}`);
      bar?.start(bar.getTotal(), bar.getProgress() * bar.getTotal());
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

export function makeProgram(): Command {
  const program = new Command('lorakit').description('Parameter-efficient fine-tuning (LoRA and friends) for TypeScript, on ONNX Runtime').showHelpAfterError();

  program
    .command('train')
    .description('Fine-tune a model with an adapter on a classification set; compares with the frozen-encoder baseline')
    .addOption(new Option('--model <name|dir>', "'use' = the bundled Universal Sentence Encoder lite, or a Hugging Face model folder (BERT, RoBERTa, DistilBERT)").default('use'))
    .option('--task <name>', "what to train: 'classification' or 'causal-lm' (Hugging Face decoder folder + JSONL prompt/completion, messages or text)", 'classification')
    .addOption(new Option('--data <imdb|file.jsonl>', "'imdb' = bundled IMDB reviews (seeded split), or JSONL lines {\"text\":…,\"label\":…}").default('imdb'))
    .option('--method <name>', `adapter method (${Object.keys(METHODS).join(', ')})`, 'lora')
    .option('--method-option <key=value>', 'a field of the method\'s config (repeatable), e.g. d_initial=0.05', collectMethodOption, {})
    .option('--target-modules <list>', "comma-separated module names/suffixes, a regex, or 'all-linear'", list, ['qkv', 'output', 'conv1', 'conv2'])
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
    .option('--lr <lr>', 'peak learning rate (linear warmup and decay)', num('--lr'), 2e-3)
    .option('--head-lr-scale <x>', 'learning-rate multiplier for the new classification head', num('--head-lr-scale'), 5)
    .addOption(new Option('--head-init <how>', "classification head start: 'random', or 'probe' = the frozen-encoder linear probe (LP-FT: training starts from the baseline)").choices(['random', 'probe']).default('random'))
    .option('--batch <n>', 'batch size', int('--batch'), 32)
    .option('--seed <n>', 'seed for init, batch order and dropout (the data split is fixed, the same for every seed)', int('--seed'), 42)
    .option('--out <dir>', 'output folder (adapter, checkpoints, metrics.jsonl, results.json)', 'runs/default')
    .option('--max-train <n>', 'use at most N training examples', int('--max-train'), 6000)
    .option('--max-eval <n>', 'use at most N validation and N test examples', int('--max-eval'), 1000)
    .option('--max-len <n>', 'truncate token sequences (USE reads at most 128)', int('--max-len'), 128)
    .option('--threads <n>', 'onnxruntime intra-op threads', int('--threads'))
    .option('--patience <n>', 'early stopping: epochs without validation improvement', int('--patience'))
    .option('--resume', 'continue from the last checkpoint in --out', false)
    .option('--no-baseline', 'skip the frozen-encoder baseline')
    .option('--quiet', 'no progress bar', false)
    .action(async (o) => {
      if (!(o.lr > 0)) throw new InvalidArgumentError(`--lr must be a positive number, got ${o.lr}`);
      const loraDropout = o.loraDropout ?? o.dropout;
      if (o.task === 'causal-lm') {
        const unsupported = (['useDora', 'useRslora', 'rslora', 'initLoraWeights', 'loraplusLrRatio'] as const).filter((k) => o[k] !== undefined && o[k] !== false);
        if (unsupported.length || Object.keys(o.methodOption).length || o.method !== 'lora') {
          throw new InvalidArgumentError(`--task causal-lm trains a plain LoRA (--rank, --alpha, --lora-dropout); ${[...unsupported.map((k) => `--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`), ...(Object.keys(o.methodOption).length ? ['--method-option'] : []), ...(o.method !== 'lora' ? [`--method ${o.method}`] : [])].join(', ')} not supported there`);
        }
        return trainCausalLmCli({ ...o, dropout: loraDropout });
      }
      if (o.task !== 'classification') throw new InvalidArgumentError(`--task '${o.task}' is not supported by train (supported: classification, causal-lm)`);
      const method = trainMethod(o.method, !!o.useDora);
      if (o.loraplusLrRatio !== undefined && !(o.loraplusLrRatio > 0)) throw new InvalidArgumentError(`--loraplus-lr-ratio must be a positive number, got ${o.loraplusLrRatio}`);
      if (o.loraplusLrRatio !== undefined && method !== 'lora' && method !== 'dora') throw new InvalidArgumentError(`--loraplus-lr-ratio scales lora_B's learning rate: it needs --method lora or dora, not ${method}`);
      const flags = { rank: o.rank, alpha: o.alpha, loraDropout, useRslora: o.useRslora || o.rslora || undefined, initLoraWeights: o.initLoraWeights };
      const t0 = performance.now();
      const res = await runClassificationJob(
        {
          model: o.model,
          data: o.data,
          method,
          methodConfig: methodConfigFromFlags(method, flags, o.methodOption),
          loraplusLrRatio: o.loraplusLrRatio,
          targetModules: o.targetModules,
          epochs: o.epochs,
          lr: o.lr,
          headLrScale: o.headLrScale,
          batchSize: o.batch,
          seed: o.seed,
          out: o.out,
          maxTrain: o.maxTrain,
          maxEval: o.maxEval,
          maxLen: o.maxLen,
          threads: o.threads,
          resume: o.resume,
          baseline: o.baseline,
          headInit: o.headInit,
          patience: o.patience,
        },
        terminalUi(o.quiet),
      );
      console.log(`\nTest split: ${res.split.test} examples (trained on ${res.split.train}, validated on ${res.split.validation})`);
      console.table(res.rows.map((r) => ({ system: r.system, 'test accuracy %': +(100 * r.testAccuracy).toFixed(2), 'trainable params': r.trainableParams, 'wall time s': +r.seconds.toFixed(1) })));
      console.log(`adapter: ${res.adapterDir}  metrics: ${o.out}/metrics.jsonl  total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    });

  program
    .command('eval')
    .description('Evaluate a saved adapter (from lorakit train) on a data split')
    .requiredOption('--adapter <dir>', 'adapter folder (adapter_config.json + adapter_model.safetensors)')
    .addOption(new Option('--data <imdb|file.jsonl>', 'data set').default('imdb'))
    .addOption(new Option('--split <name>', 'which split').choices(['test', 'validation']).default('test'))
    .option('--max-eval <n>', 'use at most N examples', int('--max-eval'))
    .option('--threads <n>', 'onnxruntime intra-op threads', int('--threads'))
    .action(async (o) => {
      const r = await runEvalJob({ adapter: o.adapter, data: o.data, split: o.split, maxEval: o.maxEval, threads: o.threads });
      console.log(`${o.split}: accuracy ${(100 * r.accuracy).toFixed(2)}% (loss ${r.loss.toFixed(4)}) on ${r.n} examples`);
    });

  registerGenerate(program);
  registerCompare(program);
  registerMergeExport(program);

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
