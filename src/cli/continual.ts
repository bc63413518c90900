// `lorakit continual`: a sequence of classification tasks (src/tasks/continual.ts).
import path from 'node:path';
import { Command, Option } from 'commander';
import { int, list, num } from './parse.ts';
import { runContinualJob, type ContinualSystem } from '../tasks/continual.ts';
import { TEXT_SETS } from '../data/text_sets.ts';
import { checkMethodOptions, collectMethodOption } from './method_options.ts';

export function registerContinual(program: Command): void {
  program
    .command('continual')
    .description("Train a sequence of classification tasks one after the other (CoDyRA: merge and restart per task) and report the accuracy matrix, average accuracy and forgetting beside sequential LoRA and one LoRA per task")
    .requiredOption('--tasks <list>', `tasks in order (${TEXT_SETS.join(', ')})`, list)
    .option('--method <name>', "the merged-per-task method (default codyra)", 'codyra')
    .option('--method-option <key=value>', "a field of the method's config (repeatable)", collectMethodOption, {})
    .option('--systems <list>', "which systems: method, lora-sequential, lora-per-task", list, ['method', 'lora-sequential', 'lora-per-task'])
    .addOption(new Option('--model <name|dir>', "'use' (bundled) or a Hugging Face encoder folder").default('use'))
    .option('-r, --rank <r>', 'rank of the LoRA systems', int('--rank'), 8)
    .option('--epochs <n>', 'epochs per task', int('--epochs'), 2)
    .option('--lr <lr>', 'learning rate', num('--lr'), 2e-3)
    .option('--head-lr-scale <x>', "each task head's learning-rate multiplier", num('--head-lr-scale'), 5)
    .option('--batch <n>', 'batch size', int('--batch'), 32)
    .option('--seed <n>', 'seed', int('--seed'), 42)
    .option('--max-train <n>', 'training examples per task', int('--max-train'), 400)
    .option('--max-eval <n>', 'test examples per task', int('--max-eval'), 200)
    .option('--max-len <n>', 'truncate token sequences', int('--max-len'), 64)
    .option('--threads <n>', 'onnxruntime intra-op threads', int('--threads'))
    .option('--out <dir>', 'continual.json and continual.md go here', 'runs/continual')
    .option('--quiet', 'no per-task messages', false)
    .action(async (o) => {
      const systems = o.systems as ContinualSystem[];
      for (const s of systems) if (!['method', 'lora-sequential', 'lora-per-task'].includes(s)) throw new Error(`--systems: '${s}' is not one of method, lora-sequential, lora-per-task`);
      const ui = { info: (m: string) => !o.quiet && console.log(m), startPhase() {}, step() {}, eval() {}, endPhase() {} };
      const { markdown } = await runContinualJob(
        {
          tasks: o.tasks, method: o.method, methodConfig: checkMethodOptions(o.method, o.methodOption), loraConfig: { r: o.rank, lora_alpha: 2 * o.rank }, systems,
          model: o.model, epochs: o.epochs, lr: o.lr, headLrScale: o.headLrScale, batchSize: o.batch, seed: o.seed, maxTrain: o.maxTrain, maxEval: o.maxEval,
          maxLen: o.maxLen, threads: o.threads, out: o.out,
        },
        ui,
      );
      console.log(`\n${markdown}\n\nwrote ${path.join(o.out, 'continual.md')} and continual.json`);
    });
}
