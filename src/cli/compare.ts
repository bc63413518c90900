// `lorakit compare`: several adapter methods × seeds on the bundled sentiment
// task, one table (console + Markdown) and an SVG bar chart (src/tasks/compare.ts).
import fs from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { int, list, num } from './parse.ts';
import { compareTable, parseSystem, rankMarkdown, runCompare } from '../tasks/compare.ts';
import { METHODS } from '../adapters/registry.ts';
import { methodConfigKeys, methodDefaults } from './method_options.ts';

/** 'fourierft=0.05,lora=0.002' → { fourierft: 0.05, lora: 0.002 } */
const pairs = (v: string) =>
  Object.fromEntries(
    v.split(',').map((kv) => {
      const [k, x] = kv.split('=');
      if (!k || x === undefined) throw new InvalidArgumentError(`expected method=value pairs, got '${kv}'`);
      return [k.trim(), num(`--method-lr ${k}`)(x.trim())];
    }),
  );

/** --rank as per-method configs: r for the methods that have it (the others keep their own size, and say so). */
export function rankConfigs(methods: string[], r: number, info: (m: string) => void): Record<string, Record<string, unknown>> {
  const withR = methods.filter((m) => !parseSystem(m).full && methodConfigKeys(parseSystem(m).method)?.includes('r'));
  const without = methods.filter((m) => !withR.includes(m));
  if (without.length) info(`--rank ${r} applies to ${withR.join(', ') || 'none of the methods'}; ${without.join(', ')} keep their own size (no rank r)`);
  return Object.fromEntries(withR.map((m) => [m, { r }]));
}

export function registerCompare(program: Command): void {
  program
    .command('compare')
    .description('Train several adapter methods over several seeds on the bundled sentiment task (plus the frozen-encoder baseline); table, Markdown and SVG chart')
    .requiredOption('--methods <list>', `comma-separated methods (${Object.keys(METHODS).join(', ')}), a method with another optimizer (lora@lorapro, lora@allora, lora@sgd), or full fine-tuning (full, full@galore)`, (v) => list(v) as string[])
    .option('--seeds <n>', 'number of seeds (first-seed, first-seed+1, ...)', int('--seeds'), 3)
    .option('--first-seed <n>', 'first seed', int('--first-seed'), 42)
    .addOption(new Option('--task <name>', "'sentiment' (= classification on --data)").choices(['sentiment', 'classification']).default('sentiment'))
    .addOption(new Option('--model <name|dir>', "'use' (bundled) or a Hugging Face encoder folder").default('use'))
    .addOption(new Option('--data <imdb|file.jsonl>', "'imdb' = bundled IMDB reviews").default('imdb'))
    .option('--target-modules <list>', "module names/suffixes, a regex, or 'all-linear'", list, ['qkv', 'output', 'conv1', 'conv2'])
    .option('-r, --rank <r>', `rank r for every method that has one; default: each method's own (${methodDefaults('r')})`, int('--rank'))
    .option('--epochs <n>', 'training epochs', int('--epochs'), 1)
    .option('--lr <lr>', 'adapter learning rate (per-method overrides: --method-lr)', num('--lr'), 2e-3)
    .option('--method-lr <pairs>', 'per-method adapter learning rates, e.g. fourierft=0.05', pairs)
    .addOption(new Option('--head-init <how>', "classification head start: 'probe' = the frozen-encoder linear probe (LP-FT), 'random'").choices(['probe', 'random']).default('probe'))
    .option('--head-lr-scale <x>', 'head learning rate = --lr × this, the same for every method', num('--head-lr-scale'), 5)
    .option('--batch <n>', 'batch size', int('--batch'), 32)
    .option('--max-train <n>', 'at most N training examples', int('--max-train'), 1000)
    .option('--max-eval <n>', 'at most N validation and N test examples', int('--max-eval'), 500)
    .option('--max-len <n>', 'truncate token sequences', int('--max-len'), 128)
    .option('--threads <n>', 'onnxruntime intra-op threads', int('--threads'))
    .option('--out <dir>', 'run folders and compare.json', 'runs/compare')
    .option('--md <file>', 'write the Markdown table here (default <out>/compare.md)')
    .option('--svg <file>', 'write the SVG chart here (default: next to the Markdown, .svg)')
    .option('--eval-ranks', 'also score the dylora and lora runs at every rank b ≤ r (DyLoRA at b; LoRA truncated to b)', false)
    .option('--reuse', 'reuse runs already in <out>/compare.json made with the same settings (to add methods)', false)
    .option('--quiet', 'no per-run messages', false)
    .action(async (o) => {
      const command = `lorakit ${process.argv.slice(2).join(' ')}`;
      const quietUi = { info: (m: string) => (o.quiet ? undefined : console.log(m)), startPhase() {}, step() {}, eval() {}, endPhase() {} };
      const res = await runCompare(
        {
          methods: o.methods,
          seeds: o.seeds,
          firstSeed: o.firstSeed,
          model: o.model,
          data: o.data,
          targetModules: o.targetModules,
          methodConfigs: o.rank === undefined ? undefined : rankConfigs(o.methods, o.rank, (m) => !o.quiet && console.log(m)),
          epochs: o.epochs,
          lr: o.lr,
          methodLr: o.methodLr,
          headLrScale: o.headLrScale,
          headInit: o.headInit,
          batchSize: o.batch,
          maxTrain: o.maxTrain,
          maxEval: o.maxEval,
          maxLen: o.maxLen,
          threads: o.threads,
          out: o.out,
          command,
          reuse: o.reuse,
          evalRanks: o.evalRanks,
        },
        quietUi,
      );
      console.table(compareTable(res.rows));
      if (res.rankAccuracy?.length) console.log(`\n${rankMarkdown(res.rankAccuracy)}\n`);
      const md = o.md ?? path.join(o.out, 'compare.md');
      const svg = o.svg ?? md.replace(/\.md$/, '') + '.svg';
      fs.mkdirSync(path.dirname(md), { recursive: true });
      fs.mkdirSync(path.dirname(svg), { recursive: true });
      fs.writeFileSync(svg, res.svg);
      const doc = [
        '# Adapter methods compared on the bundled sentiment task',
        '',
        'Made by:',
        '',
        '```',
        command,
        '```',
        '',
        res.markdown,
        '',
        `![test accuracy](${path.relative(path.dirname(md), svg) || path.basename(svg)})`,
        '',
      ].join('\n');
      fs.writeFileSync(md, doc);
      console.log(`wrote ${md} and ${svg}`);
    });
}
