// How a training job writes its adapter: as the method itself (saveAdapter),
// or — for methods whose trained form is a smaller plain LoRA
// (AdapterMethod.savesAsLora: SoRA, CoDyRA, AdaLoRA, IncreLoRA, DiffoRA,
// Bayesian-LoRA) — as that PEFT LoRA (saveAdapterAsLora), with the method's
// own folder kept beside it as `<dir>_native` (to inspect its gates or train on).
import { saveAdapter, type SavedAdapterInfo } from './adapter_files.ts';
import { saveAdapterAsLora } from './as_lora.ts';
import type { AdapterSet } from '../adapters/inject.ts';

export type SaveAs = 'lora' | 'native';

export interface SavedTrained {
  dir: string;
  /** The format written at `dir`. */
  saveAs: SaveAs;
  /** The method's own folder when `dir` holds the LoRA form. */
  nativeDir?: string;
  /** Ranks of the LoRA form per module (saveAs 'lora'). */
  ranks?: Record<string, number>;
  /** Trainable parameters of what `dir` holds (adapter tensors only). */
  adapterParams: number;
}

/** The default format for a method (`lorakit train --save-as`). */
export const defaultSaveAs = (set: AdapterSet): SaveAs => (set.method.savesAsLora ? 'lora' : 'native');

export function saveTrainedAdapter(dir: string, set: AdapterSet, info: SavedAdapterInfo, saveAs: SaveAs = defaultSaveAs(set)): SavedTrained {
  if (saveAs === 'native') {
    saveAdapter(dir, set, info);
    return { dir, saveAs, adapterParams: set.trainableCount() - set.baseCopyKeys().reduce((n, k) => n + set.params.get(k)!.length, 0) };
  }
  const nativeDir = `${dir.replace(/\/+$/, '')}_native`;
  saveAdapter(nativeDir, set, info);
  const res = saveAdapterAsLora(dir, set, info);
  return { dir, saveAs, nativeDir, ranks: res.ranks, adapterParams: res.params };
}
