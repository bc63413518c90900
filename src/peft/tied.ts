// Tied weights (tie_word_embeddings: GPT-2's wte, T5/BART's shared, tied
// Qwen2/Llama — the output head and the embedding table): an adapter on one of
// them cannot be merged without changing the other.

import type { AdapterSet } from '../adapters/inject.ts';
import type { LinearSite } from '../models/types.ts';

/**
 * Adapted sites whose weight another part of the model reads too
 * (tie_word_embeddings: GPT-2's wte, T5/BART's shared, tied Qwen2/Llama — the
 * output head and the embedding table): merging their ΔW would change both,
 * which the unmerged adapter does not. Each with what it is tied to.
 */
export function tiedTargets(model: { sites: LinearSite[]; headNames?: string[] }, set: Pick<AdapterSet, 'targets'>): { site: LinearSite; tiedTo: string }[] {
  const heads = model.headNames ?? [];
  const out: { site: LinearSite; tiedTo: string }[] = [];
  for (const site of set.targets) {
    const other = model.sites.find((o) => o.name !== site.name && o.weightKey === site.weightKey);
    if (other) out.push({ site, tiedTo: `'${other.name}'` });
    else if (heads.includes(site.name) && site.weightKey !== `${site.name}.weight`) out.push({ site, tiedTo: 'the input embeddings' });
  }
  return out;
}

/** The message for a merge of tied sites. */
export function tiedMergeError(what: string, tied: { site: LinearSite; tiedTo: string }[]): string {
  const { site, tiedTo } = tied[0];
  return `${what} adapts '${site.name}', whose weight '${site.weightKey}' is tied to ${tiedTo} (tie_word_embeddings): merging would change both, ` +
    `unlike the unmerged adapter. Serve it unmerged (PeftModel, lorakit generate --adapter) or train it without '${site.name}' in target_modules`;
}
