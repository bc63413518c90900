// `lorakit loram recover`: a LoRA trained on a pruned model (src/workflows/
// loram/prune.ts) becomes a LoRA for the original model, as LoRAM's
// 3_recovered_low_rank_matrix_generation.py does it: in each pruned layer the
// lora_B rows of gate/up/q/k/v and the lora_A columns of down/o are put back
// at their kept indices of the original width, with zeros at the pruned ones
// ('zero', the official zeroA default; 'normA' fills the pruned lora_A
// columns of down/o from N(0, (1/r)²), the official normA with the adapter's
// own r where the official code writes r = 8). Everything else (the config,
// lora_A of q/k/v/gate/up, lora_B of o/down, unpruned layers, lm_head and
// embeddings) is copied unchanged. So ΔW_full = s·B_full·A_full equals the
// pruned model's ΔW on every kept (row, column) and is zero elsewhere ('zero').

import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../io/atomic.ts';
import { writeSafetensors } from '../../io/safetensors.ts';
import { PEFT_PREFIX } from '../../adapters/inject.ts';
import type { StoredTensor } from '../../adapters/types.ts';
import { CONFIG_FILE, LORAKIT_CONFIG_FILE, readAdapter, WEIGHTS_FILE } from '../../peft/adapter_files.ts';
import { Rng } from '../../util/rng.ts';
import { keptLayer, readPlan, type LoramPlan } from './plan.ts';

export type RecoverFill = 'zero' | 'normA';

/** Which tensors a pruned layer changes: key suffix → (axis to pad, the kept indices' kind). */
const PADDED: Record<string, { axis: 0 | 1; kept: 'ffn' | 'q' | 'kv' }> = {
  'mlp.gate_proj.lora_B.weight': { axis: 0, kept: 'ffn' },
  'mlp.up_proj.lora_B.weight': { axis: 0, kept: 'ffn' },
  'mlp.down_proj.lora_A.weight': { axis: 1, kept: 'ffn' },
  'self_attn.q_proj.lora_B.weight': { axis: 0, kept: 'q' },
  'self_attn.k_proj.lora_B.weight': { axis: 0, kept: 'kv' },
  'self_attn.v_proj.lora_B.weight': { axis: 0, kept: 'kv' },
  'self_attn.o_proj.lora_A.weight': { axis: 1, kept: 'q' },
};
const PRUNED_MODULES = ['mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj', 'self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj'];
const UNCHANGED_SUFFIXES = ['lora_A.weight', 'lora_B.weight'];

/**
 * The recovered tensors (PEFT keys): pruned layers padded back to the original
 * widths, everything else as it was. Fails, naming the tensor, on a shape that
 * does not match the pruned model or on tensors recovery does not define
 * (DoRA magnitudes, bias copies, modules_to_save of a pruned module).
 */
export function recoverTensors(tensors: Map<string, StoredTensor>, plan: Pick<LoramPlan, 'original' | 'layers'>, o: { fill?: RecoverFill; seed?: number } = {}): Map<string, StoredTensor> {
  const out = new Map(tensors);
  const fill = o.fill ?? 'zero';
  const s = plan.original.shape;
  const full = { ffn: s.intermediateSize, q: s.numHeads * s.headDim, kv: s.numKvHeads * s.headDim };
  for (const lp of plan.layers) {
    const prefix = `${PEFT_PREFIX}model.layers.${lp.layer}.`;
    const k = keptLayer(plan, lp);
    const kept = { ffn: k.ffn, q: k.qFeatures, kv: k.kvFeatures };
    for (const [key] of tensors) {
      if (!key.startsWith(prefix)) continue;
      const rest = key.slice(prefix.length);
      const mod = PRUNED_MODULES.find((m) => rest.startsWith(`${m}.`));
      if (!mod) continue;
      const suffix = rest.slice(mod.length + 1);
      if (!UNCHANGED_SUFFIXES.includes(suffix)) {
        throw new Error(`loram recover: '${key}' (${suffix}) is on a pruned module; recovery is defined for LoRA's lora_A / lora_B (the paper's), not for DoRA magnitudes, bias or modules_to_save copies`);
      }
    }
    for (const [suffix, how] of Object.entries(PADDED)) {
      const key = prefix + suffix;
      const t = tensors.get(key);
      if (!t) continue; // the module is not adapted
      const idx = kept[how.kept];
      const [rows, cols] = t.shape;
      const have = how.axis === 0 ? rows : cols;
      if (have !== idx.length) {
        throw new Error(`loram recover: '${key}' has shape [${t.shape}], but the pruned model's layer ${lp.layer} keeps ${idx.length} of ${full[how.kept]} along that axis: was the adapter trained on this pruned model?`);
      }
      if (how.axis === 0) {
        const data = new Float32Array(full[how.kept] * cols);
        idx.forEach((r, i) => data.set(t.data.subarray(i * cols, (i + 1) * cols), r * cols));
        out.set(key, { shape: [full[how.kept], cols], data });
      } else {
        const n = full[how.kept];
        const data = new Float32Array(rows * n);
        if (fill === 'normA') new Rng(o.seed ?? 0).fork(`loram-normA-${key}`).fillNormal(data, 0, 1 / rows);
        for (let r = 0; r < rows; r++) idx.forEach((c, j) => (data[r * n + c] = t.data[r * cols + j]));
        out.set(key, { shape: [rows, n], data });
      }
    }
  }
  return out;
}

export interface LoramRecoverOptions {
  /** The adapter folder trained on the pruned model. */
  adapter: string;
  /** The folder `lorakit loram prune` wrote (its loram.json). */
  pruned: string;
  out: string;
  fill?: RecoverFill;
  seed?: number;
}

/** Writes the recovered adapter folder; its base_model_name_or_path is the original model. */
export function runLoramRecover(o: LoramRecoverOptions): { out: string; plan: LoramPlan; changed: number } {
  const plan = readPlan(o.pruned);
  const loaded = readAdapter(o.adapter);
  const cfg = loaded.config;
  if (cfg.peft_type !== 'LORA' || cfg.use_dora === true) {
    throw new Error(`loram recover: ${path.join(o.adapter, CONFIG_FILE)} is ${cfg.use_dora ? 'a DoRA' : `a ${cfg.peft_type}`} adapter; LoRAM recovers LoRA adapters (peft_type LORA, use_dora false)`);
  }
  if (path.resolve(o.out) === path.resolve(o.adapter)) throw new Error(`loram recover: --out ${o.out} is the adapter folder itself; write the recovered adapter to a new folder`);
  const tensors = recoverTensors(loaded.tensors, plan, { fill: o.fill, seed: o.seed });
  let changed = 0;
  for (const [k, t] of tensors) if (t !== loaded.tensors.get(k)) changed++;
  fs.mkdirSync(o.out, { recursive: true });
  writeSafetensors(path.join(o.out, WEIGHTS_FILE), new Map([...tensors].map(([k, t]) => [k, { dtype: 'F32' as const, shape: t.shape, data: t.data }])), { format: 'pt' });
  // The official script copies adapter_config.json unchanged; the base model it now applies to is the original.
  const raw = JSON.parse(fs.readFileSync(path.join(loaded.dir, CONFIG_FILE), 'utf8'));
  raw.base_model_name_or_path = plan.original.model;
  const { lorakit, ...rest } = cfg;
  void rest;
  const block = { ...(lorakit ?? {}), loram: { recovered_from: path.resolve(o.adapter), pruned_model: path.resolve(o.pruned), fill: o.fill ?? 'zero' } };
  if (raw.lorakit !== undefined) raw.lorakit = block;
  else writeFileAtomic(path.join(o.out, LORAKIT_CONFIG_FILE), JSON.stringify(block, null, 2) + '\n');
  writeFileAtomic(path.join(o.out, CONFIG_FILE), JSON.stringify(raw, null, 2) + '\n');
  return { out: o.out, plan, changed };
}
