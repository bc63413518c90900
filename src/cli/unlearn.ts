// `lorakit unlearn`: LoKU knowledge unlearning (src/workflows/loku/).

import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { int, list, num, positiveInt } from './parse.ts';
import { runUnlearn } from '../workflows/loku/unlearn.ts';
import { UNLEARN_LOSSES } from '../workflows/loku/task.ts';
import type { JobUi } from '../tasks/train.ts';
import type { KnowledgeMetrics } from '../workflows/loku/evaluate.ts';

function ui(quiet: boolean): JobUi {
  let bar: cliProgress.SingleBar | null = null;
  return {
    info: (m) => console.log(m),
    startPhase(name, total) {
      if (quiet) return;
      bar = new cliProgress.SingleBar({ format: `${name.padEnd(22)} {bar} {value}/{total} | loss {loss} | ETA {eta_formatted}`, hideCursor: true, noTTYOutput: true, notTTYSchedule: 10000 }, cliProgress.Presets.shades_classic);
      bar.start(total, 0, { loss: '-' });
    },
    advance: (n) => bar?.increment(n),
    step: (s) => bar?.update(s.step, { loss: s.loss.toFixed(4) }),
    eval() {},
    endPhase() {
      bar?.stop();
      bar = null;
    },
  };
}

const row = (set: string, when: string, m: KnowledgeMetrics) => ({ set, when, 'NLL/token': +m.nll.toFixed(4), 'answer prob.': +m.probability.toFixed(4), 'token acc. %': +(100 * m.token_accuracy).toFixed(1), 'exact %': +(100 * m.exact_match).toFixed(1) });

export function registerUnlearn(program: Command): void {
  program
    .command('unlearn')
    .description("LoKU knowledge unlearning: a LoRA trained with the inverted hinge loss on the forget set and NLL on the retain set, FILA-initialized (Cha et al., ICLR 2025)")
    .requiredOption('--model <dir>', 'a decoder folder (GPT-2, Llama, Qwen2, Mistral) that knows the facts')
    .requiredOption('--forget <file.jsonl>', 'what to forget: {"prompt","completion"} facts (or {"text"} / {"messages"})')
    .requiredOption('--retain <file.jsonl>', 'what to keep, same format')
    .addOption(new Option('--init <how>', "fila: Fisher-weighted low-rank init (the residual replaces W0); lora: PEFT's default LoRA init").choices(['fila', 'lora']).default('fila'))
    .addOption(new Option('--loss <kind>', 'ihl: inverted hinge loss + retain NLL (LoKU); gd: gradient difference; ga: gradient ascent').choices([...UNLEARN_LOSSES]).default('ihl'))
    .option('-r, --rank <r>', 'LoRA rank (the official scripts sweep 4-32)', positiveInt('--rank'), 8)
    .option('--alpha <alpha>', 'lora_alpha (default 2·rank, as the official scripts)', num('--alpha'))
    .option('--target-modules <list>', "module names/suffixes, a regex, or 'all-linear' (default: every linear layer but the output head)", list)
    .option('--epochs <n>', 'passes over the forget set', positiveInt('--epochs'), 5)
    .option('--lr <lr>', 'peak learning rate (warmup over one epoch, then linear decay)', num('--lr'), 2e-4)
    .option('--batch <n>', 'forget examples per step (each with a drawn retain example)', positiveInt('--batch'), 4)
    .option('--weight-decay <x>', 'AdamW weight decay', num('--weight-decay'), 0.01)
    .option('--importance-batch <n>', 'FILA: examples per forget / retain batch of the importance pass', positiveInt('--importance-batch'), 4)
    .option('--max-len <n>', 'truncate token sequences', positiveInt('--max-len'), 256)
    .option('--seed <n>', 'seed for init, order, retain partners', int('--seed'), 42)
    .option('--merge', 'also write the unlearned model folder <out>/model')
    .option('--out <dir>', 'output folder: adapter/, results.json, metrics.jsonl, checkpoints/', 'runs/unlearn')
    .option('--resume', 'continue from the last checkpoint in --out', false)
    .option('--threads <n>', 'onnxruntime intra-op threads', int('--threads'))
    .option('--quiet', 'no progress bar', false)
    .action(async (o) => {
      const r = await runUnlearn(
        {
          model: o.model, forget: o.forget, retain: o.retain, out: o.out, init: o.init, loss: o.loss, rank: o.rank, alpha: o.alpha, targetModules: o.targetModules,
          epochs: o.epochs, lr: o.lr, batchSize: o.batch, weightDecay: o.weightDecay, importanceBatch: o.importanceBatch, maxLen: o.maxLen, seed: o.seed,
          merge: !!o.merge, resume: o.resume, threads: o.threads,
        },
        ui(o.quiet),
      );
      if (!r.after) return;
      console.table([row('forget', 'before', r.before.forget), row('forget', 'after', r.after.forget), row('retain', 'before', r.before.retain), row('retain', 'after', r.after.retain)]);
      console.log(`adapter: ${r.adapterDir}${r.modelDir ? `  model: ${r.modelDir}` : ''}  results: ${o.out}/results.json  total ${r.seconds.toFixed(0)} s`);
    });
}
