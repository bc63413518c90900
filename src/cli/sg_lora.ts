// `lorakit sg-lora build` and `lorakit sg-lora generate`: an adapter for an
// unseen task from its description (src/workflows/sg_lora/).

import { Command, Option } from 'commander';
import { int, num, positiveInt } from './parse.ts';
import { GENERATE_METHODS, runSgLoraBuild, runSgLoraGenerate } from '../workflows/sg_lora/jobs.ts';

export function registerSgLora(program: Command): void {
  const sg = program.command('sg-lora').description('SG-LoRA: generate a LoRA for an unseen task from its one-sentence description, from a library of expert LoRAs');

  sg.command('build')
    .description('Build a library from expert adapter folders (each with description.txt): description embeddings (bundled USE) and the CVAE generator')
    .requiredOption('--library <dirs...>', 'expert folders (an adapter folder, or a run folder with adapter/, plus description.txt), e.g. runs/experts/*')
    .requiredOption('--out <dir>', 'the library folder (library.json, generator.safetensors)')
    .option('--hidden <n>', 'CVAE hidden width', positiveInt('--hidden'), 64)
    .option('--latent <n>', 'CVAE latent size (at most the PCA rank)', positiveInt('--latent'), 8)
    .option('--beta <x>', 'weight of the KL term', num('--beta'), 0.1)
    .option('--epochs <n>', 'CVAE training epochs (one batch of all experts each)', positiveInt('--epochs'), 1500)
    .option('--lr <lr>', 'CVAE learning rate (AdamW, constant)', num('--lr'), 3e-3)
    .option('--temperature <τ>', 'default similarity temperature of generate', num('--temperature'), 0.1)
    .option('--seed <n>', 'seed of the CVAE init and noise', int('--seed'), 0)
    .option('--threads <n>', 'onnxruntime intra-op threads', int('--threads'))
    .action(async (o) => {
      await runSgLoraBuild({ experts: o.library, out: o.out, hidden: o.hidden, latent: o.latent, beta: o.beta, epochs: o.epochs, lr: o.lr, temperature: o.temperature, seed: o.seed, threads: o.threads }, { info: (m) => console.log(m), startPhase() {}, step() {}, eval() {}, endPhase() {} });
    });

  sg.command('generate')
    .description('Generate a PEFT LoRA for a task described in one sentence (no data, no training)')
    .requiredOption('--library <dir>', 'a library folder written by sg-lora build')
    .requiredOption('--description <text>', "the new task's description")
    .requiredOption('--out <dir>', 'the adapter folder to write')
    .addOption(new Option('--method <how>', 'cvae: the generator; weighted: Σ wᵢ·ΔWᵢ, w = softmax(cos/τ); nearest: the most similar expert; uniform: the plain average').choices([...GENERATE_METHODS]).default('cvae'))
    .option('--temperature <τ>', 'similarity temperature (default: the library\'s)', num('--temperature'))
    .option('--samples <n>', 'cvae: average over n latent draws (0: the prior mean z = 0)', int('--samples'), 0)
    .option('--seed <n>', 'cvae: seed of the latent draws', int('--seed'), 0)
    .option('--threads <n>', 'onnxruntime intra-op threads', int('--threads'))
    .action(async (o) => {
      const r = await runSgLoraGenerate({ library: o.library, description: o.description, out: o.out, method: o.method, temperature: o.temperature, samples: o.samples, seed: o.seed, threads: o.threads });
      console.table(r.weights.map((w) => ({ expert: w.dir, description: w.description, cosine: +w.cosine.toFixed(4), weight: +w.weight.toFixed(4) })));
      console.log(`adapter (${r.method}): ${r.out}`);
    });
}
