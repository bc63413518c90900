// ../shared/data/summ (DialogSum, SciTLDR test/dev sets with references), read
// in place, never copied into the repository. Tests that need it skip where it
// is absent.
import fs from 'node:fs';
import path from 'node:path';
import { readAllSummDocuments, type SummDocument } from '../../src/summarize/documents.ts';

export const SUMM_DIR = process.env.LORAKIT_SUMM_DATA ?? path.resolve(import.meta.dirname, '../../../shared/data/summ');

export const summDataMissing = fs.existsSync(path.join(SUMM_DIR, 'dialogsum', 'test.jsonl')) ? false : `no summarization data at ${SUMM_DIR} (set LORAKIT_SUMM_DATA)`;

export function summDocuments(file: string): Promise<SummDocument[]> {
  return readAllSummDocuments(path.join(SUMM_DIR, file));
}
