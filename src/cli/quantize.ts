// `lorakit quantize`: save a model folder's quantized base beside it (src/tasks/quantize.ts).
import { Command } from 'commander';
import { baseDtypeOption } from './parse.ts';
import { runQuantizeJob } from '../tasks/quantize.ts';

export function registerQuantize(program: Command): void {
  program
    .command('quantize')
    .description(
      'Quantize a model folder\'s frozen linear weights once and save them beside it (<model>/lorakit-base.<dtype>.safetensors): every later load with that --base-dtype ' +
        '(train, eval, generate, index, search, rerank, summarize, duqgen) takes them from there and never reads those float32 weights. ' +
        'int8 saves the codes and per-channel scales; nf4 the packed 4-bit codes and each block\'s absmax; int4 the packed 4-bit codes and each tile\'s scale and zero point ' +
        '(the copy packed the other way for the backward is rebuilt from them when training needs it). ' +
        'A saved form whose model weights changed (SHA-256 of the weight files) is not used: the load says so and quantizes itself',
    )
    .requiredOption('--model <dir>', 'Hugging Face model folder (written into: it must be writable)')
    .addOption(baseDtypeOption('int8'))
    .action(async (o) => {
      const r = await runQuantizeJob({ model: o.model, baseDtype: o.baseDtype });
      const mib = (b: number) => (b / 2 ** 20).toFixed(1);
      console.log(`${r.weights} weights as ${o.baseDtype}: ${mib(r.storedBytes)} MiB (${mib(r.fp32Bytes)} MiB as float32) → ${r.file} (${mib(r.bytes)} MiB) in ${r.seconds.toFixed(1)} s`);
    });
}
