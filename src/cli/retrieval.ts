// `lorakit index`, `lorakit search`, `lorakit eval-ir`: BM25 / dense first
// stage and trec_eval-equal evaluation (src/retrieval/).

import fs from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { baseDtypeOption, int, list, num } from './parse.ts';
import { runEvalIrJob, runIndexJob, runSearchJob } from '../tasks/retrieval.ts';
import { runRerankJob } from '../tasks/rerank.ts';
import { DEFAULT_MEASURES } from '../retrieval/metrics.ts';
import { HF_MODELS } from '../models/hf_registry.ts';
import type { JobUi } from '../tasks/train.ts';

const fieldsOf = (v: string) => {
  const f = v.split(',').map((s) => s.trim());
  for (const x of f) if (x !== 'title' && x !== 'text') throw new InvalidArgumentError(`--fields: '${x}' is not 'title' or 'text'`);
  return f;
};

/** A folder whose config.json names a decoder or encoder-decoder family (read without loading the weights). */
function isGenerativeFolder(dir: string): boolean {
  try {
    const t = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).model_type;
    return HF_MODELS[t] !== undefined && HF_MODELS[t].kind !== 'encoder';
  } catch {
    return false;
  }
}

export function registerRetrieval(program: Command, ui: (quiet: boolean) => JobUi): void {
  program
    .command('index')
    .description('Index a BEIR corpus.jsonl ({"_id", "title", "text"}) for search: BM25 (Lucene scoring) or dense (sentence-encoder cosine)')
    .requiredOption('--corpus <file.jsonl>', 'documents, one {"_id", "title", "text"} a line')
    .requiredOption('--out <dir>', 'index folder')
    .addOption(new Option('--kind <kind>', 'bm25 or dense').choices(['bm25', 'dense']).default('bm25'))
    .option('--fields <list>', 'document fields searched, joined by a space', fieldsOf, ['title', 'text'])
    .option('--k1 <x>', 'BM25 k1 (Lucene/Anserini default)', num('--k1'), 0.9)
    .option('--b <x>', 'BM25 b (Lucene/Anserini default)', num('--b'), 0.4)
    .addOption(new Option('--tokens <kind>', "BM25 tokens: ascii = lowercase [a-z0-9]+, unicode = lowercase letters/digits of any script (\\w+)").choices(['ascii', 'unicode']).default('ascii'))
    .option('--stopwords <lucene|none|file>', "BM25 stopwords: Lucene's 33 English words, none, or a file with one a line", 'lucene')
    .option('--model <use|dir>', 'dense: the encoder', 'use')
    .option('--adapter <dirs>', 'dense: adapter folder(s), comma-separated to stack them (e.g. lang,task)', list)
    .option('--max-len <n>', 'dense: token budget per document', int('--max-len'), 128)
    .option('--batch <n>', 'dense: documents per encoder run', int('--batch'), 64)
    .addOption(baseDtypeOption('fp32', ' (dense: the encoder; recorded in index.json, so search encodes the queries alike)'))
    .option('--threads <n>', 'onnxruntime intra-op threads', int('--threads'))
    .option('--quiet', 'no progress bar', false)
    .action(async (o) => {
      const r = await runIndexJob({ corpus: o.corpus, out: o.out, kind: o.kind, fields: o.fields, k1: o.k1, b: o.b, tokens: o.tokens, stopwords: o.stopwords, model: o.model, adapters: o.adapter, maxLen: o.maxLen, batchSize: o.batch, threads: o.threads, baseDtype: o.baseDtype }, ui(o.quiet));
      console.log(`${o.kind} index of ${r.documents} documents${r.terms !== undefined ? `, ${r.terms} terms` : ''} in ${r.seconds.toFixed(2)} s: ${o.out}`);
    });

  program
    .command('search')
    .description('Search an index with queries.jsonl ({"_id", "text"}); writes a TREC run')
    .requiredOption('--index <dir>', 'folder from lorakit index')
    .requiredOption('--queries <file.jsonl>', 'queries, one {"_id", "text"} a line')
    .requiredOption('--out <run.trec>', 'TREC run file to write')
    .option('--top <n>', 'documents per query', int('--top'), 100)
    .option('--tag <name>', 'run tag (last column)', 'lorakit')
    .option('--query-adapter <dirs>', "dense: adapters for the queries instead of the index's (comma-separated to stack, e.g. the query language's adapter, then the task adapter)", list)
    .addOption(baseDtypeOption(null, " (dense: the query encoder; default: the index's, from index.json)"))
    .option('--threads <n>', 'onnxruntime intra-op threads', int('--threads'))
    .option('--quiet', 'no progress bar', false)
    .action(async (o) => {
      if (!(o.top >= 1)) throw new InvalidArgumentError('--top must be at least 1');
      const r = await runSearchJob({ index: o.index, queries: o.queries, top: o.top, out: o.out, tag: o.tag, queryAdapters: o.queryAdapter, threads: o.threads, baseDtype: o.baseDtype }, ui(o.quiet));
      console.log(`${r.queries} queries × top ${o.top} in ${r.searchSeconds.toFixed(3)} s (total ${r.seconds.toFixed(2)} s): ${o.out}`);
    });

  program
    .command('rerank')
    .description('Re-score the top of a TREC run: a cross-encoder with the adapter (and score head) from lorakit train --task rerank, or a bi-encoder (cosine)')
    .option('--model <use|dir>', "the encoder: 'use' (the bundled model, over the pair text) or a BERT-family folder (pairs with token_type_ids)", 'use')
    .option('--adapter <dirs>', 'adapter folder; comma-separated folders are stacked in order (the last holds the score head)', list)
    .option('--stack <dirs>', 'same as --adapter with several folders: e.g. lang,task (the language adapter under the task adapter)', list)
    .requiredOption('--run <run.trec>', 'first-stage TREC run')
    .requiredOption('--queries <file.jsonl>', 'queries {"_id", "text"}')
    .requiredOption('--corpus <file.jsonl>', 'documents {"_id", "title", "text"}')
    .requiredOption('--out <run.trec>', 'reranked TREC run to write (the top candidates only)')
    .option('--top <n>', 'candidates re-scored per query', int('--top'), 100)
    .addOption(new Option('--mode <kind>', "cross (encoder + the rerank adapter's score head), bi (cosine of embeddings), or yesno (a decoder / T5 / BART folder scored by P(yes) to \"Does the passage answer the query?\"); default: yesno for a decoder or T5 / BART folder, else cross").choices(['cross', 'bi', 'yesno', 'setwise', 'groupwise']))
    .addOption(new Option('--strategy <kind>', 'same as --mode (setwise: Rank-R1 heapsort; groupwise: GroupRank windows; pointwise = yesno)').choices(['cross', 'bi', 'yesno', 'pointwise', 'setwise', 'groupwise']))
    .option('--num-child <n>', 'setwise: children per heap node, so a prompt shows n + 1 documents (Rank-R1: 19, i.e. 20 documents)', int('--num-child'), 19)
    .option('--k <n>', 'setwise: documents the heapsort ranks (the rest follow in heap order)', int('--k'), 10)
    .option('--max-new-tokens <n>', "setwise / groupwise: longest answer (both reason before they answer)", int('--max-new-tokens'), 256)
    .option('--seed <n>', "setwise / groupwise: seed of the shuffled document orders (both official codes shuffle) and of groupwise sampling (default 929 setwise, 666 groupwise)", int('--seed'))
    .option('--group-size <n>', 'groupwise: candidates per window', int('--group-size'), 20)
    .option('--stride <n>', 'groupwise: distance between window starts', int('--stride'), 10)
    .option('--passes <n>', 'groupwise: passes over the candidates, each in a new shuffled order; scores averaged', int('--passes'), 2)
    .option('--fields <list>', 'document fields, joined by a space', fieldsOf, ['title', 'text'])
    .option('--max-len <n>', 'token budget of a pair (cross) or a text (bi)', int('--max-len'), 128)
    .addOption(baseDtypeOption('fp32', ' (every strategy; stacked adapters below the last are merged, then quantized again)'))
    .option('--fuse <w>', "final score = w·reranker + (1 − w)·first stage, each min-max normalized over the query's candidates (GroupRank: 0.6); default: the reranker alone", num('--fuse'))
    .option('--threads <n>', 'onnxruntime intra-op threads', int('--threads'))
    .option('--quiet', 'no progress bar', false)
    .action(async (o) => {
      if (o.adapter && o.stack) throw new InvalidArgumentError('give --adapter or --stack, not both');
      const adapters: string[] = o.stack ?? o.adapter ?? [];
      if (!(o.top >= 1)) throw new InvalidArgumentError('--top must be at least 1');
      if (o.mode && o.strategy) throw new InvalidArgumentError('give --mode or --strategy, not both');
      const strategy = o.strategy === 'pointwise' ? 'yesno' : o.strategy;
      const mode = o.mode ?? strategy ?? (o.model !== 'use' && isGenerativeFolder(o.model) ? 'yesno' : 'cross');
      const r = await runRerankJob({ model: o.model, adapters, run: o.run, queries: o.queries, corpus: o.corpus, top: o.top, out: o.out, mode, fields: o.fields, maxLen: o.maxLen, threads: o.threads, fuse: o.fuse, numChild: o.numChild, k: o.k, maxNewTokens: o.maxNewTokens, seed: o.seed, groupSize: o.groupSize, stride: o.stride, passes: o.passes, baseDtype: o.baseDtype }, ui(o.quiet));
      const what = r.mode === 'yesno' ? 'yes/no' : r.mode === 'setwise' || r.mode === 'groupwise' ? r.mode : `${r.mode}-encoder`;
      const prompts = r.prompts !== undefined ? `, ${r.prompts} prompts (${r.malformed} unreadable answers: ${r.mode === 'setwise' ? 'the parent kept its place' : 'scored by the first stage'})` : '';
      console.log(`${what}: ${r.queries} queries, ${r.pairs} pairs${prompts} in ${r.seconds.toFixed(1)} s: ${o.out}`);
    });

  program
    .command('eval-ir')
    .description('Score a TREC run against qrels exactly as NIST trec_eval -c does (nDCG@k with graded gains, MRR@k, MAP, Recall@k, P@k)')
    .requiredOption('--qrels <file>', 'TREC qrels (qid iter docno rel) or BEIR qrels.tsv')
    .requiredOption('--run <file>', 'TREC run (qid Q0 docno rank score tag)')
    .option('--measures <list>', `measures (ours or trec_eval's names: ndcg_cut.10, recip_rank, map, recall.100, P.10)`, list, DEFAULT_MEASURES)
    .option('--relevance-level <n>', 'documents with rel ≥ n are relevant (trec_eval -l)', int('--relevance-level'), 1)
    .option('--per-query', 'also print each query\'s values (trec_eval -q)', false)
    .option('--json', 'print JSON', false)
    .action((o) => {
      const e = runEvalIrJob({ qrels: o.qrels, run: o.run, measures: o.measures, relevanceLevel: o.relevanceLevel });
      if (o.json) {
        console.log(JSON.stringify({ mean: e.mean, queries: e.queries, missing: e.missing, unjudged: e.unjudged, perQuery: o.perQuery ? Object.fromEntries(e.perQuery) : undefined }, null, 2));
        return;
      }
      if (o.perQuery) for (const [q, row] of e.perQuery) for (const [m, v] of Object.entries(row)) console.log(`${m.padEnd(12)}\t${q}\t${v.toFixed(4)}`);
      for (const [m, v] of Object.entries(e.mean)) console.log(`${m.padEnd(12)}\tall\t${v.toFixed(4)}`);
      console.log(`${e.queries} judged queries (every one counts, as trec_eval -c)${e.missing.length ? `; ${e.missing.length} have no results in the run and score 0` : ''}${e.unjudged.length ? `; ${e.unjudged.length} run queries have no judgments and are ignored` : ''}`);
    });
}
