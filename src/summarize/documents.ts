// Documents to summarize and reference summaries, one JSON object a line:
//   {"id": "...", "document": "...", "sentences": ["...", ...]?, "summaries": ["...", ...]?}
// ("text" is accepted for "document", "summary" for a single reference;
// ../shared/data/summ's DialogSum and SciTLDR files are in this format).
// Files are read line by line, so a large file never sits in memory whole.

import fs from 'node:fs';
import readline from 'node:readline';
import { splitSentences } from './sentences.ts';

export interface SummDocument {
  /** The line's "id", or its 1-based line number as a string. */
  id: string;
  document: string;
  /** Pre-split sentences, when the file gives them. */
  sentences?: string[];
  /** Reference summaries, when the file gives them. */
  summaries?: string[];
}

/** How a document is cut into units for extraction: 'sentences' (the splitter; a "sentences" field wins), 'lines' (one unit a line: dialogue turns). */
export type UnitMode = 'sentences' | 'lines';

export const DOCUMENT_LINE_FORMAT = '{"id": "d1", "document": "text to summarize", "summaries": ["a reference"]}  ("sentences": [...] optional)';

const isStr = (x: unknown): x is string => typeof x === 'string';

function parseDocument(o: any, line: number): SummDocument | string {
  const document = o?.document ?? o?.text;
  if (!isStr(document)) return 'expected a "document" (or "text") string';
  if (o.sentences !== undefined && !(Array.isArray(o.sentences) && o.sentences.every(isStr))) return '"sentences" must be a list of strings';
  let summaries: string[] | undefined;
  if (o.summaries !== undefined) {
    if (!(Array.isArray(o.summaries) && o.summaries.every(isStr))) return '"summaries" must be a list of strings';
    summaries = o.summaries;
  } else if (o.summary !== undefined) {
    if (!isStr(o.summary)) return '"summary" must be a string';
    summaries = [o.summary];
  }
  const id = o.id === undefined ? String(line) : String(o.id);
  return { id, document, sentences: o.sentences, summaries };
}

/** Streams the JSON objects of a JSONL file with their 1-based line numbers (blank lines skipped). */
export async function* readJsonlObjects(file: string, format: string): AsyncGenerator<{ o: any; line: number }> {
  if (!fs.existsSync(file)) throw new Error(`${file}: not found`);
  const rl = readline.createInterface({ input: fs.createReadStream(file, 'utf8'), crlfDelay: Infinity });
  let n = 0, any = false;
  for await (const raw of rl) {
    n++;
    const line = raw.trim();
    if (!line) continue;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch (e) {
      throw new Error(`${file}:${n}: not valid JSON (${(e as Error).message})\nA valid line looks like: ${format}`);
    }
    any = true;
    yield { o, line: n };
  }
  if (!any) throw new Error(`${file}: no lines (a valid line looks like: ${format})`);
}

/** Streams the documents of a JSONL file; a bad line throws with file:line and what a good line looks like. */
export async function* readSummDocuments(file: string): AsyncGenerator<SummDocument> {
  for await (const { o, line } of readJsonlObjects(file, DOCUMENT_LINE_FORMAT)) {
    const d = parseDocument(o, line);
    if (typeof d === 'string') throw new Error(`${file}:${line}: ${d}\nA valid line looks like: ${DOCUMENT_LINE_FORMAT}`);
    yield d;
  }
}

export const SUMMARY_LINE_FORMAT = '{"id": "d1", "summary": "the summary"}';
export const REFERENCE_LINE_FORMAT = '{"id": "d1", "summaries": ["reference 1", "reference 2"]}  or  {"id": "d1", "summary": "reference"}';

/** Streams {"id", "summaries" | "summary"} lines (document files with references qualify). */
export async function* readSummaries(file: string, format: string): AsyncGenerator<{ id: string; summaries: string[] }> {
  for await (const { o, line } of readJsonlObjects(file, format)) {
    const at = `${file}:${line}`;
    if (o?.id === undefined) throw new Error(`${at}: expected an "id" (predictions and references are matched by id)\nA valid line looks like: ${format}`);
    const summaries = Array.isArray(o.summaries) ? o.summaries : o.summary !== undefined ? [o.summary] : null;
    if (!summaries || !summaries.length || !summaries.every(isStr)) throw new Error(`${at}: expected "summary": "..." or "summaries": ["...", ...]\nA valid line looks like: ${format}`);
    yield { id: String(o.id), summaries };
  }
}

/** Reads every document of a (small) file. */
export async function readAllSummDocuments(file: string): Promise<SummDocument[]> {
  const out: SummDocument[] = [];
  for await (const d of readSummDocuments(file)) out.push(d);
  return out;
}

/** The extraction units of a document: its "sentences" if given, else its lines or split sentences. */
export function documentUnits(doc: SummDocument, mode: UnitMode = 'sentences'): string[] {
  if (doc.sentences) return doc.sentences.filter((s) => s.trim());
  if (mode === 'lines') return doc.document.split('\n').map((s) => s.trim()).filter(Boolean);
  return splitSentences(doc.document);
}
