// `lorakit sg-lora build` and `lorakit sg-lora generate` (SG-LoRA, Li et al.,
// arXiv 2509.10535: an adapter for an unseen task from its description alone).
//
// build:    expert folders (adapter + description.txt) → <library>/
//             library.json           the experts, their descriptions and description embeddings
//                                    (the bundled Universal Sentence Encoder lite), θ's layout,
//                                    the generator's spec and training losses
//             generator.safetensors  the CVAE's weights and the PCA (mean, directions, scales)
// generate: a description → a PEFT LoRA folder, by
//             cvae      the generator (src/workflows/sg_lora/cvae.ts), conditioned on the
//                       similarity-weighted expert embeddings (default)
//             weighted  Σ wᵢ·ΔWᵢ with w = softmax(cos(e, eᵢ)/τ)  (the baseline)
//             nearest   the most similar expert's adapter
//             uniform   Σ ΔWᵢ / n
//
// The generated folder is a normal PEFT LoRA (adapter_config.json +
// adapter_model.safetensors; a classification head as modules_to_save, as the
// experts had it): `lorakit eval`, `merge`, PeftModel and PEFT itself load it.

import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../io/atomic.ts';
import { readSafetensors, writeSafetensors } from '../../io/safetensors.ts';
import { SentenceEmbedder } from '../../summarize/embed_similarity.ts';
import { silentUi, type JobUi } from '../../tasks/train.ts';
import { CvaeTask, fromCoords, pca, toCoords, trainCvae, type CvaeSpec, type Pca } from './cvae.ts';
import { flatten, layoutOf, readExpert, unflatten, writeAdapterFolder, type Expert, type FlatLayout } from './library.ts';
import { similarityWeights, weightedMerge } from './similarity.ts';
import { Rng } from '../../util/rng.ts';

export const LIBRARY_FILE = 'library.json';
export const GENERATOR_FILE = 'generator.safetensors';

/** Sentence embeddings of texts (default: the bundled USE lite). */
export type Embed = (texts: string[]) => Promise<Float32Array[]>;

export async function useEmbed(texts: string[], threads?: number): Promise<Float32Array[]> {
  const e = await SentenceEmbedder.load('use', { threads });
  const flat = await e.embed(texts);
  return texts.map((_, i) => flat.slice(i * e.dim, (i + 1) * e.dim));
}

export interface BuildOptions {
  experts: string[];
  out: string;
  hidden?: number;
  latent?: number;
  beta?: number;
  epochs?: number;
  lr?: number;
  seed?: number;
  /** Default similarity temperature of `generate` (stored in the library). */
  temperature?: number;
  threads?: number;
  embed?: Embed;
}

interface LibraryFile {
  format: 'lorakit-sg-lora/1';
  experts: { dir: string; adapterDir: string; description: string; embedding: number[] }[];
  layout: FlatLayout;
  spec: CvaeSpec;
  pcaK: number;
  temperature: number;
  training: { epochs: number; lr: number; seed: number; losses: number[] };
}

export async function runSgLoraBuild(o: BuildOptions, ui: JobUi = silentUi): Promise<{ out: string; experts: number; losses: number[] }> {
  if (o.experts.length < 2) throw new Error(`SG-LoRA needs a library of at least 2 expert folders, got ${o.experts.length}`);
  if (o.beta !== undefined && !(o.beta >= 0)) throw new Error(`beta (the KL weight) must be ≥ 0, got ${o.beta}`);
  if (o.lr !== undefined && !(o.lr > 0)) throw new Error(`the CVAE learning rate must be positive, got ${o.lr}`);
  if (o.temperature !== undefined && !(o.temperature > 0)) throw new Error(`the temperature must be positive, got ${o.temperature}`);
  const experts = o.experts.map(readExpert);
  const layout = layoutOf(experts);
  ui.info(`SG-LoRA library: ${experts.length} experts (${new Set(experts.map((e) => e.description)).size} descriptions), ${layout.size.toLocaleString('en-US')} parameters each`);
  const embed = o.embed ?? ((t: string[]) => useEmbed(t, o.threads));
  const embeddings = await embed(experts.map((e) => e.description));
  const samples = experts.map((e) => flatten(e, layout));
  const p = pca(samples);
  const spec: CvaeSpec = { inputDim: p.k, condDim: embeddings[0].length, hidden: o.hidden ?? 64, latent: Math.min(o.latent ?? 8, p.k), beta: o.beta ?? 0.1 };
  const seed = o.seed ?? 0, epochs = o.epochs ?? 1500, lr = o.lr ?? 3e-3;
  const task = new CvaeTask(spec, seed);
  const examples = samples.map((s, i) => ({ x: toCoords(p, s), c: embeddings[i] }));
  ui.info(`generator: CVAE on ${p.k} PCA coordinates, condition ${spec.condDim}-d, hidden ${spec.hidden}, latent ${spec.latent}, β ${spec.beta}; ${epochs} epochs`);
  const losses = await trainCvae(task, examples, { epochs, lr, batchSize: examples.length, seed, threads: o.threads });
  fs.mkdirSync(o.out, { recursive: true });
  const tensors = new Map<string, { dtype: 'F32' | 'F64'; shape: number[]; data: Float32Array | Float64Array }>();
  for (const [k, t] of task.params) tensors.set(k, { dtype: 'F32', shape: t.shape, data: t.data });
  tensors.set('pca.mean', { dtype: 'F64', shape: [p.P], data: p.mean });
  tensors.set('pca.basis', { dtype: 'F64', shape: [p.k, p.P], data: p.basis });
  tensors.set('pca.sigma', { dtype: 'F64', shape: [p.k], data: p.sigma });
  writeSafetensors(path.join(o.out, GENERATOR_FILE), tensors, { format: 'pt' });
  const lib: LibraryFile = {
    format: 'lorakit-sg-lora/1',
    experts: experts.map((e, i) => ({ dir: path.resolve(e.dir), adapterDir: path.resolve(e.adapterDir), description: e.description, embedding: Array.from(embeddings[i]) })),
    layout, spec, pcaK: p.k, temperature: o.temperature ?? 0.1, training: { epochs, lr, seed, losses: [losses[0], losses[losses.length - 1]] },
  };
  writeFileAtomic(path.join(o.out, LIBRARY_FILE), JSON.stringify(lib) + '\n');
  ui.info(`generator loss ${losses[0].toFixed(3)} → ${losses[losses.length - 1].toFixed(3)}; library: ${o.out}`);
  return { out: o.out, experts: experts.length, losses };
}

export type GenerateMethod = 'cvae' | 'weighted' | 'nearest' | 'uniform';
export const GENERATE_METHODS: readonly GenerateMethod[] = ['cvae', 'weighted', 'nearest', 'uniform'];

export interface GenerateOptions {
  library: string;
  description: string;
  out: string;
  method?: GenerateMethod;
  temperature?: number;
  /** cvae: average the decoder over this many latent draws (0: z = 0, the default). */
  samples?: number;
  seed?: number;
  threads?: number;
  embed?: Embed;
}

export interface GenerateResult {
  out: string;
  method: GenerateMethod;
  weights: { dir: string; description: string; cosine: number; weight: number }[];
}

function readLibrary(dir: string): { lib: LibraryFile; experts: Expert[] } {
  const file = path.join(dir, LIBRARY_FILE);
  if (!fs.existsSync(file)) throw new Error(`${file}: not found: build the library first with \`lorakit sg-lora build --library <expert folders> --out ${dir}\``);
  const lib = JSON.parse(fs.readFileSync(file, 'utf8')) as LibraryFile;
  if (lib.format !== 'lorakit-sg-lora/1') throw new Error(`${file}: format '${lib.format}' is not lorakit-sg-lora/1`);
  const experts = lib.experts.map((e) => {
    if (!fs.existsSync(e.adapterDir)) throw new Error(`${file}: expert adapter ${e.adapterDir} is gone; rebuild the library`);
    return readExpert(e.dir);
  });
  return { lib, experts };
}

export async function runSgLoraGenerate(o: GenerateOptions): Promise<GenerateResult> {
  if (!o.description.trim()) throw new Error('the description is empty: SG-LoRA generates an adapter from one sentence that describes the task');
  const { lib, experts } = readLibrary(o.library);
  const method = o.method ?? 'cvae';
  const embed = o.embed ?? ((t: string[]) => useEmbed(t, o.threads));
  const [query] = await embed([o.description]);
  const { cosines, weights } = similarityWeights(query, lib.experts.map((e) => e.embedding), o.temperature ?? lib.temperature);
  const report = lib.experts.map((e, i) => ({ dir: e.dir, description: e.description, cosine: cosines[i], weight: weights[i] }));
  const scaling = (e: Expert) => (e.config.use_rslora ? e.config.lora_alpha / Math.sqrt(e.config.r) : e.config.lora_alpha / e.config.r);
  const sgLora = { description: o.description, method, temperature: o.temperature ?? lib.temperature, library: path.resolve(o.library), experts: report };
  if (method === 'nearest') {
    const best = cosines.indexOf(Math.max(...cosines));
    writeAdapterFolder(o.out, experts[best], experts[best].tensors, { sgLora });
  } else if (method === 'weighted' || method === 'uniform') {
    const w = method === 'uniform' ? experts.map(() => 1 / experts.length) : weights;
    const { tensors, r } = weightedMerge(experts.map((e) => e.tensors), w, experts.map(scaling));
    writeAdapterFolder(o.out, experts[0], tensors, { config: { r, lora_alpha: r, use_rslora: false, rank_pattern: {}, alpha_pattern: {} }, sgLora: { ...sgLora, experts: report.map((x, i) => ({ ...x, weight: w[i] })) } });
  } else {
    const gen = readSafetensors(path.join(o.library, GENERATOR_FILE));
    const t = (k: string) => {
      const x = gen.tensors.get(k);
      if (!x) throw new Error(`${path.join(o.library, GENERATOR_FILE)}: no tensor '${k}'; rebuild the library`);
      return x;
    };
    const p: Pca = { mean: t('pca.mean').data as Float64Array, basis: t('pca.basis').data as Float64Array, sigma: t('pca.sigma').data as Float64Array, k: lib.pcaK, P: lib.layout.size };
    const init = new Map([...gen.tensors].filter(([k]) => k.startsWith('cvae.')).map(([k, v]) => [k, v.data as Float32Array]));
    const task = new CvaeTask(lib.spec, 0, init);
    // The condition: the similarity-weighted sum of the experts' description embeddings.
    const c = new Float64Array(lib.spec.condDim);
    lib.experts.forEach((e, i) => e.embedding.forEach((v, j) => (c[j] += weights[i] * v)));
    const x = new Float64Array(lib.spec.inputDim);
    const n = o.samples ?? 0;
    if (n <= 0) x.set(task.decode(new Float64Array(lib.spec.latent), c));
    else {
      const rng = new Rng(o.seed ?? 0).fork('sg-lora-z');
      for (let s = 0; s < n; s++) {
        const xs = task.decode(Float64Array.from({ length: lib.spec.latent }, () => rng.normal()), c);
        for (let j = 0; j < x.length; j++) x[j] += xs[j] / n;
      }
    }
    writeAdapterFolder(o.out, experts[0], unflatten(fromCoords(p, x), lib.layout), { sgLora: { ...sgLora, samples: n, seed: o.seed ?? 0 } });
  }
  return { out: o.out, method, weights: report };
}
