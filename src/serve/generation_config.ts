// Generation defaults a Hugging Face folder carries, as transformers reads
// them: generation_config.json if present, else config.json's own fields;
// for summarization, config.json's task_specific_params.summarization (T5's
// "summarize: " prefix and beam settings) on top, as the summarization
// pipeline applies them. Lengths are HF's (decoder start token included).

import fs from 'node:fs';
import path from 'node:path';

export interface GenerationDefaults {
  numBeams?: number;
  lengthPenalty?: number;
  earlyStopping?: boolean | 'never';
  noRepeatNgramSize?: number;
  minLength?: number;
  maxLength?: number;
  forcedBosTokenId?: number;
  forcedEosTokenId?: number;
  /** Text put before every input (T5: "summarize: "). */
  prefix?: string;
}

const readJson = (file: string): Record<string, any> => {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
};

function pick(o: Record<string, any>): GenerationDefaults {
  const num = (k: string) => (typeof o[k] === 'number' ? o[k] : undefined);
  const es = o.early_stopping;
  return {
    numBeams: num('num_beams'), lengthPenalty: num('length_penalty'), noRepeatNgramSize: num('no_repeat_ngram_size'),
    minLength: num('min_length'), maxLength: num('max_length'), forcedBosTokenId: num('forced_bos_token_id'), forcedEosTokenId: num('forced_eos_token_id'),
    earlyStopping: es === true || es === false || es === 'never' ? es : undefined,
    prefix: typeof o.prefix === 'string' ? o.prefix : undefined,
  };
}

const defined = (o: GenerationDefaults) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as GenerationDefaults;

/** The folder's generation defaults (`task`: also config.json's task_specific_params[task]). */
export function readGenerationDefaults(dir: string, task?: 'summarization'): GenerationDefaults {
  const cfgFile = path.join(dir, 'config.json'), genFile = path.join(dir, 'generation_config.json');
  const cfg = fs.existsSync(cfgFile) ? readJson(cfgFile) : {};
  const base = fs.existsSync(genFile) ? pick(readJson(genFile)) : pick(cfg);
  const taskParams = task && cfg.task_specific_params?.[task] ? pick(cfg.task_specific_params[task]) : {};
  return { ...defined(base), ...defined(taskParams) };
}
