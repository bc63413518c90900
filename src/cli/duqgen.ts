// `lorakit duqgen`: synthetic reranker training data for an unlabeled corpus (src/tasks/duqgen.ts).

import { Command, InvalidArgumentError, Option } from 'commander';
import { baseDtypeOption, int, num } from './parse.ts';
import { runDuqgenJob } from '../tasks/duqgen.ts';
import type { JobUi } from '../tasks/train.ts';

export function registerDuqgen(program: Command, ui: (quiet: boolean) => JobUi): void {
  program
    .command('duqgen')
    .description('DUQGen: cluster a corpus, sample documents per cluster (softmax of cosine to the centroid), write one synthetic query per document and mine hard negatives; <out>/pairs.jsonl trains a reranker (lorakit train --task rerank)')
    .requiredOption('--corpus <file.jsonl>', 'documents, one {"_id", "title", "text"} a line')
    .requiredOption('--out <dir>', 'output folder: pairs.jsonl, queries.jsonl, sampled.jsonl, info.json')
    .option('--clusters <K>', 'k-means clusters (official default 1000)', int('--clusters'), 1000)
    .option('--samples <N>', 'documents sampled = synthetic queries (official default 1000)', int('--samples'), 1000)
    .option('--generator-model <dir>', 'Hugging Face decoder (GPT-2, Llama, Qwen2, Mistral) or T5 / BART folder that writes the queries (greedy, ≤ 64 tokens, the paper\'s prompt); without it the queries are extractive (no language model)')
    .option('--max-new-tokens <n>', 'tokens a generated query may have (the paper: 64)', int('--max-new-tokens'), 64)
    .addOption(baseDtypeOption('fp32', ' (the --generator-model; the bundled encoder that clusters the corpus stays fp32)'))
    .option('--examples <file.jsonl>', 'the prompt\'s few-shot examples, {"document", "query"} a line (up to 3; the paper uses 3)')
    .addOption(new Option('--negatives-from <stage>', 'first stage that ranks the hard negatives (ranks 93–100 of its top 100): dense (the bundled encoder, as the official contriever run) or bm25').choices(['dense', 'bm25']).default('dense'))
    .option('--negatives <n>', 'hard negatives per query (1 positive : n negatives)', int('--negatives'), 4)
    .option('--min-chars <n>', 'documents shorter than this are not sampled (official 300)', int('--min-chars'), 300)
    .option('--temperature <T>', 'softmax temperature of the sampling', num('--temperature'), 1)
    .option('--lambda <λ>', 'MMR λ over the pooled draws (1 = cosine to the centroid\'s nearest document, the official default)', num('--lambda'), 1)
    .option('--seed <n>', 'k-means seed (the sampling uses the official seeds 35, 745, 10, 6534, 2)', int('--seed'), 42)
    .option('--threads <n>', 'onnxruntime intra-op threads', int('--threads'))
    .option('--quiet', 'no progress bar', false)
    .action(async (o) => {
      if (!(o.samples >= 1)) throw new InvalidArgumentError('--samples must be at least 1');
      if (!(o.temperature > 0)) throw new InvalidArgumentError('--temperature must be positive');
      if (!(o.lambda >= 0 && o.lambda <= 1)) throw new InvalidArgumentError('--lambda must be in [0, 1]');
      const r = await runDuqgenJob({ corpus: o.corpus, out: o.out, clusters: o.clusters, samples: o.samples, seed: o.seed, minChars: o.minChars, temperature: o.temperature, lambda: o.lambda, generatorModel: o.generatorModel, examples: o.examples, negativesFrom: o.negativesFrom, negatives: o.negatives, maxNewTokens: o.maxNewTokens, threads: o.threads, baseDtype: o.baseDtype }, ui(o.quiet));
      console.log(`${r.sampled} documents sampled of ${r.eligible} eligible (${r.documents} in all); ${r.queries} queries (${r.generator}); ${r.pairs} training groups in ${r.seconds.toFixed(1)} s: ${o.out}/pairs.jsonl`);
      if (r.capped.length) console.log(`note: ${r.capped.length} clusters had fewer documents than allocated; all of theirs were taken`);
      if (r.generator === 'extractive') console.log('note: extractive queries (no language model): the title, or the most specific sentence, taken out of the document');
    });
}
