// JSONL training data of the tasks beyond classification, one JSON object a
// line (blank lines skipped). Every problem names file:line and shows what a
// valid line looks like; nothing is dropped silently.
//
//   seq2seq   {"source": "...", "target": "..."}
//   rerank    {"query": "...", "documents": ["...", ...], "labels": [1, 0, ...]}
//             or {"query": "...", "positive": "..." | "positives": [...], "negatives": [...]}
//   embed     {"anchor": "...", "positive": "..."}  ("query" / "text" for "anchor" also accepted)
//   causal-lm {"prompt": "...", "completion": "..."}   loss on the completion only
//             {"messages": [{"role": ..., "content": ...}, ...]}   the model's chat
//                 template; loss on the last (assistant) message
//             {"text": "..."}   loss on every token

import fs from 'node:fs';
import type { ChatMessage } from '../io/hf.ts';
import { FileFormatError } from '../util/errors.ts';

/** A problem with a task's JSONL file; `file:line: problem` for each bad line. */
export class RecordsError extends FileFormatError {
  constructor(file: string, problem: string, message?: string) {
    super(file, problem);
    if (message) this.message = message;
    this.name = 'RecordsError';
  }
}

export interface Seq2SeqRecord { source: string; target: string }
export interface RerankRecord { query: string; documents: string[]; labels: number[] }
export interface EmbedRecord { anchor: string; positive: string }

export const RECORD_FORMATS = {
  seq2seq: '{"source": "...", "target": "..."}',
  rerank: '{"query": "...", "documents": ["...", "..."], "labels": [1, 0]}  or  {"query": "...", "positive": "...", "negatives": ["...", "..."]}',
  embed: '{"anchor": "...", "positive": "..."}',
  'causal-lm': '{"prompt": "...", "completion": "..."}  or  {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}  or  {"text": "..."}',
} as const;

/** Reads JSON lines through `parse`, which returns the record or a problem; throws listing the first problems. */
export function readJsonLines<T>(file: string, format: string, parse: (o: any) => T | string): T[] {
  if (!fs.existsSync(file)) throw new RecordsError(file, 'not found');
  const out: T[] = [];
  const problems: string[] = [];
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new RecordsError(file, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    const at = `${file}:${i + 1}`;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch (e) {
      problems.push(`${at}: not valid JSON (${(e as Error).message})`);
      return;
    }
    const r = parse(o);
    if (typeof r === 'string') problems.push(`${at}: ${r}`);
    else out.push(r);
  });
  if (problems.length) throw new RecordsError(file, '', `${problems.slice(0, 10).join('\n')}${problems.length > 10 ? `\n… and ${problems.length - 10} more` : ''}\nA valid line looks like: ${format}`);
  if (!out.length) throw new RecordsError(file, `no examples (a valid line looks like: ${format})`);
  return out;
}

const isStr = (x: unknown): x is string => typeof x === 'string';
const strings = (x: unknown): x is string[] => Array.isArray(x) && x.every(isStr);

export function readSeq2SeqJsonl(file: string): Seq2SeqRecord[] {
  return readJsonLines(file, RECORD_FORMATS.seq2seq, (o) => {
    if (!isStr(o?.source) || !isStr(o?.target)) return 'expected "source" and "target" strings';
    if (!o.target.trim()) return '"target" is empty (nothing to learn)';
    return { source: o.source, target: o.target };
  });
}

export function readRerankJsonl(file: string): RerankRecord[] {
  return readJsonLines(file, RECORD_FORMATS.rerank, (o) => {
    if (!isStr(o?.query)) return 'expected a "query" string';
    if (o.documents !== undefined) {
      if (!strings(o.documents) || !o.documents.length) return '"documents" must be a non-empty list of strings';
      if (!Array.isArray(o.labels) || o.labels.length !== o.documents.length || !o.labels.every((l: unknown) => typeof l === 'number' && Number.isFinite(l))) {
        return `"labels" must be one number per document (${o.documents.length})`;
      }
      if (!o.labels.some((l: number) => l > 0)) return 'no document has a label > 0 (a query needs a relevant document to learn from)';
      return { query: o.query, documents: o.documents, labels: o.labels };
    }
    const pos = isStr(o.positive) ? [o.positive] : strings(o.positives) ? o.positives : null;
    if (!pos || !pos.length) return 'expected "documents" + "labels", or "positive" / "positives"';
    if (!strings(o.negatives ?? [])) return '"negatives" must be a list of strings';
    const neg: string[] = o.negatives ?? [];
    if (!neg.length) return 'no "negatives": a query needs candidates to rank its positive above';
    return { query: o.query, documents: [...pos, ...neg], labels: [...pos.map(() => 1), ...neg.map(() => 0)] };
  });
}

export function readEmbedJsonl(file: string): EmbedRecord[] {
  return readJsonLines(file, RECORD_FORMATS.embed, (o) => {
    const anchor = o?.anchor ?? o?.query ?? o?.text;
    if (!isStr(anchor) || !isStr(o?.positive)) return 'expected "anchor" (or "query") and "positive" strings';
    return { anchor, positive: o.positive };
  });
}

export type CausalLmRecord = { prompt: string; completion: string } | { messages: ChatMessage[] } | { text: string };

/** Reads causal-LM JSONL (formats above). */
export function readCausalLmJsonl(file: string): CausalLmRecord[] {
  return readJsonLines(file, RECORD_FORMATS['causal-lm'], (o) => {
    if (isStr(o?.prompt) && isStr(o?.completion)) return { prompt: o.prompt, completion: o.completion };
    if (Array.isArray(o?.messages) && o.messages.length > 0 && o.messages.every((m: any) => isStr(m?.role) && isStr(m?.content))) {
      if (o.messages[o.messages.length - 1].role !== 'assistant') return "the last message must be the assistant's (it is what the model learns)";
      return { messages: o.messages };
    }
    if (isStr(o?.text)) return { text: o.text };
    return 'expected "prompt"+"completion" strings, a "messages" list of {role, content}, or a "text" string';
  });
}
