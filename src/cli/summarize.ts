// `lorakit summarize` (extractive LexRank / lead, or the hybrid LexRank +
// adapted BART/T5 pipeline) and `lorakit eval-summ` (ROUGE as rouge-score
// computes it). The jobs are src/tasks/summarize.ts.
import fs from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { baseDtypeOption, int, num } from './parse.ts';
import { runEvalSummJob, runSummarizeJob } from '../tasks/summarize.ts';
import { writeFileAtomic } from '../io/atomic.ts';

const positive = (name: string) => (v: string) => {
  const x = int(name)(v);
  if (x < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got '${v}'`);
  return x;
};

function readStopwords(file: string): Set<string> {
  if (!fs.existsSync(file)) throw new InvalidArgumentError(`--stopwords ${file}: not found (one word a line)`);
  return new Set(fs.readFileSync(file, 'utf8').split(/\s+/).map((w) => w.trim().toLowerCase()).filter(Boolean));
}

const earlyStopping = (v: string) => {
  if (v === 'true' || v === 'false') return v === 'true';
  if (v === 'never') return 'never' as const;
  throw new InvalidArgumentError(`--early-stopping must be true, false or never, got '${v}'`);
};

export function registerSummarize(program: Command): void {
  program
    .command('summarize')
    .description('Summarize the documents of a JSONL file: extractive LexRank (or lead), or with --model the hybrid LexRank + (adapted) BART/T5 with beam search')
    .requiredOption('--in <docs.jsonl>', 'documents, one JSON object a line: {"id", "document" (or "text"), "sentences"?: [...]}')
    .requiredOption('--out <summaries.jsonl>', 'output: {"id", "summary", ...} a line')
    .addOption(new Option('--extractive <method>', 'how units are ranked: lexrank, or lead (document order)').choices(['lexrank', 'lead']).default('lexrank'))
    .option('--sentences <k>', 'extractive: units to keep per document', positive('--sentences'), 3)
    .addOption(new Option('--units <kind>', 'what a unit is: sentences (the splitter; a "sentences" field wins) or lines (dialogue turns)').choices(['sentences', 'lines']).default('sentences'))
    .addOption(new Option('--similarity <kind>', 'LexRank similarity: tfidf (idf-modified cosine), bow (term counts; see --stopwords), embedding (sentence encoder cosine)').choices(['tfidf', 'bow', 'embedding']).default('tfidf'))
    .option('--threshold <t>', 'LexRank edge threshold on the similarity', num('--threshold'), 0.1)
    .option('--continuous', 'continuous LexRank: similarity-weighted edges, no threshold', false)
    .option('--damping <d>', "teleport probability d of LexRank's random walk (PageRank's 1 - 0.85)", num('--damping'), 0.15)
    .addOption(new Option('--idf <scope>', 'tfidf document frequencies over the input file\'s documents, or each document\'s own units').choices(['file', 'document']).default('file'))
    .option('--stopwords <file>', 'bow: words to leave out, one a line')
    .option('--encoder <name|dir>', "embedding: 'use' (the bundled Universal Sentence Encoder lite) or an encoder folder", 'use')
    .option('--model <dir>', 'a T5 or BART folder: LexRank orders the units, the input is cut to the model\'s budget, the model writes the summary')
    .option('--adapter <dir>', 'adapter folder for --model (any method, e.g. <out>/adapter of lorakit train --task seq2seq)')
    .option('--max-input-tokens <n>', 'encoder budget (default: the tokenizer\'s model_max_length, capped by the model\'s positions)', positive('--max-input-tokens'))
    .addOption(new Option('--long <how>', 'inputs over the budget: compress (LexRank order, then cut) or chunk (summarize consecutive chunks, join)').choices(['compress', 'chunk']).default('compress'))
    .addOption(new Option('--order <how>', 'compress: feed the units in salience order (the paper) or the most salient in document order').choices(['salience', 'document']).default('salience'))
    .option('--num-beams <n>', 'beam search width (default: the folder\'s generation config, else 1 = greedy)', positive('--num-beams'))
    .option('--length-penalty <x>', 'beam score = log-prob / length^x (> 0 favours longer summaries)', num('--length-penalty'))
    .option('--no-repeat-ngram-size <n>', 'never repeat an n-gram of this size', int('--no-repeat-ngram-size'))
    .option('--min-length <n>', 'minimum summary length in tokens (HF min_length, decoder start included)', int('--min-length'))
    .option('--max-length <n>', 'maximum summary length in tokens (HF max_length, decoder start included; default: the folder\'s, else 64)', positive('--max-length'))
    .option('--early-stopping <v>', 'beam search: true, false (HF heuristic) or never', earlyStopping)
    .addOption(baseDtypeOption('fp32', ' (the models this loads: --model, and --encoder for embedding similarity)'))
    .option('--threads <n>', 'onnxruntime intra-op threads', positive('--threads'))
    .option('--quiet', 'no progress bar', false)
    .action(async (o) => {
      if (o.adapter && !o.model) throw new InvalidArgumentError('--adapter needs --model <T5|BART folder>');
      const bar = o.quiet ? null : new cliProgress.SingleBar({ format: 'summarize {bar} {value}/{total} documents | ETA {eta_formatted}', noTTYOutput: true, notTTYSchedule: 10000, stream: process.stderr }, cliProgress.Presets.shades_classic);
      let started = false;
      const r = await runSummarizeJob({
        input: o.in, output: o.out, extractive: o.extractive, sentences: o.sentences, units: o.units, similarity: o.similarity,
        threshold: o.continuous ? null : o.threshold, damping: o.damping, idf: o.idf, stopwords: o.stopwords ? readStopwords(o.stopwords) : undefined,
        encoder: o.encoder, model: o.model, adapter: o.adapter, maxInputTokens: o.maxInputTokens, long: o.long, order: o.order,
        numBeams: o.numBeams, lengthPenalty: o.lengthPenalty, noRepeatNgramSize: o.noRepeatNgramSize, minLength: o.minLength, maxLength: o.maxLength,
        earlyStopping: o.earlyStopping, threads: o.threads, baseDtype: o.baseDtype,
        progress: (done, total) => {
          if (!bar) return;
          if (!started) bar.start(total ?? 0, 0);
          started = true;
          bar.update(done);
        },
      });
      bar?.stop();
      console.error(`${r.documents} documents → ${r.output} in ${r.seconds.toFixed(1)} s${r.budget ? ` (encoder budget ${r.budget} tokens)` : ''}; peak memory ${(r.peakRss / 2 ** 20).toFixed(0)} MiB`);
    });

  program
    .command('eval-summ')
    .description("ROUGE-1/2/L/Lsum F1 of summaries against references, as Google's rouge-score computes it (multi-reference: best per type, or the mean)")
    .requiredOption('--refs <refs.jsonl>', 'references: {"id", "summaries": [...]} or {"id", "summary"} a line (a documents file with references works)')
    .requiredOption('--pred <summaries.jsonl>', 'predictions: {"id", "summary"} a line (lorakit summarize\'s output)')
    .addOption(new Option('--aggregate <how>', 'several references: max (rouge-score score_multi) or mean').choices(['max', 'mean']).default('max'))
    .option('--no-stem', 'no Porter stemming (rouge-score use_stemmer=False)')
    .option('--split-summaries', 'split summaries into sentences (one a line) before ROUGE-Lsum', false)
    .option('--bootstrap <n>', '95% intervals from n bootstrap resamples of the documents (0 = none)', int('--bootstrap'), 0)
    .option('--seed <n>', 'bootstrap seed', int('--seed'), 0)
    .option('--json <file>', 'also write the figures as JSON')
    .action(async (o) => {
      const r = await runEvalSummJob({ refs: o.refs, pred: o.pred, stem: o.stem, aggregate: o.aggregate, splitSummaries: o.splitSummaries, bootstrap: o.bootstrap, seed: o.seed });
      console.log(`${r.documents} documents, ROUGE F1 × 100 (${r.aggregate} over references${r.stem ? ', stemmed' : ''}):`);
      console.table(Object.fromEntries(Object.entries(r.scores).map(([t, s]) => [t, {
        F1: +(100 * s.fmeasure).toFixed(2), P: +(100 * s.precision).toFixed(2), R: +(100 * s.recall).toFixed(2),
        ...(r.intervals ? { '95% low': +(100 * r.intervals[t].low).toFixed(2), '95% high': +(100 * r.intervals[t].high).toFixed(2) } : {}),
      }])));
      if (o.json) writeFileAtomic(o.json, JSON.stringify(r, null, 2) + '\n');
    });
}
