// The demo page (src/demo/index.html): the bundled sentence encoder fine-tuned
// in the browser on the user's labeled texts. This file is the DOM: it reads
// the inputs, calls the page's run (train_run.ts) and server (classify.ts),
// and shows progress, the chart, results and downloads. The page keeps every
// finished run: a bad file or a failed run shows a message and changes
// nothing already trained.
//
// URL parameters: ?threads=N (WebAssembly threads; default: up to 4 when
// cross-origin isolated), ?device=webgpu.

import { zipSync } from 'fflate';
import { METHODS } from '../adapters/registry.ts';
import { trainDefaultConfig } from '../adapters/train_defaults.ts';
import { splitExamples } from '../data/split.ts';
import { fetchUseModel } from '../models/use_fetch.ts';
import { USE_MODULE_NAMES } from '../models/use.ts';
import { USE_DEFAULT_TARGETS } from '../models/use_encoder.ts';
import type { AdapterFiles } from '../peft/adapter_files.ts';
import { configureWebRuntime } from '../runtime/ort.browser.ts';
import { AdapterServer } from './classify.ts';
import { InputError, labeledSetFromBoxes, labeledSetFromJsonl, labeledSetToJsonl, type LabeledSet } from './labeled_input.ts';
import { plotSvg, type PlotData } from './plot.ts';
import { DEFAULT_SETTINGS, shellWords, trainRun, type TrainedRun, type TrainSettings } from './train_run.ts';
import type { EncoderModel } from '../models/types.ts';
import type { UseTokenizer } from '../tokenize/sentencepiece.ts';

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`demo page: no #${id}`);
  return el as T;
};
const input = (id: string) => $<HTMLInputElement>(id);

function showError(id: string, message: string | null): void {
  const el = $(id);
  el.hidden = message === null;
  el.textContent = message ?? '';
}

function status(id: string, state: string, text: string): void {
  const el = $(id);
  el.dataset.state = state;
  el.textContent = text;
}

function download(name: string, bytes: Uint8Array | string, type = 'application/octet-stream'): void {
  const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type }));
  const a = Object.assign(document.createElement('a'), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

const pct = (x: number | undefined) => (x === undefined ? '—' : `${(100 * x).toFixed(1)}%`);

// ---- state: what the page has; nothing here is dropped by a later error ----

interface Run extends TrainedRun {
  name: string;
}
const state = {
  model: null as EncoderModel | null,
  tokenizer: null as UseTokenizer | null,
  server: null as AdapterServer | null,
  data: null as LabeledSet | null,
  runs: [] as Run[],
  training: false,
  stopRequested: false,
};

// ---- runtime and model ----

async function start(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const threads = params.has('threads') ? Number(params.get('threads')) : undefined;
  const device = params.get('device') === 'webgpu' ? 'webgpu' : 'wasm';
  try {
    const info = configureWebRuntime({ wasmPaths: new URL('ort/', location.href).href, threads, device });
    $('runtime').textContent = `onnxruntime-web ${info.version} · ${info.device} · ${info.threads} thread${info.threads > 1 ? 's' : ''}${info.crossOriginIsolated ? ' · cross-origin isolated' : ''}`;
  } catch (e) {
    $('runtime').textContent = (e as Error).message;
    status('model-status', 'error', `Cannot start onnxruntime-web: ${(e as Error).message}`);
    return;
  }
  try {
    const progress = $<HTMLProgressElement>('model-progress');
    const { model, tokenizer } = await fetchUseModel(new URL('model/', location.href), {
      onProgress: (loaded, total) => {
        progress.max = total || 1;
        progress.value = loaded;
      },
    });
    state.model = model;
    state.tokenizer = tokenizer;
    state.server = new AdapterServer(model, tokenizer);
    progress.hidden = true;
    status('model-status', 'ready', `Universal Sentence Encoder lite ready: ${model.sites.length} projections, ${tokenizer.vocabSize} pieces, ${model.hiddenSize}-d sentence embeddings.`);
    refreshButtons();
  } catch (e) {
    status('model-status', 'error', `Could not load the model: ${(e as Error).message}`);
  }
}

// ---- data ----

function setData(set: LabeledSet): void {
  state.data = set;
  const split = splitExamples(set.examples);
  const counts = set.labelNames.map((n, i) => `${n} ${set.labelCounts[i]}`).join(', ');
  const el = $('data-summary');
  el.innerHTML = '';
  el.append(
    `${set.source}: ${set.examples.length} examples, ${set.labelNames.length} labels (${counts}) → ${split.train.length} train / ${split.validation.length} validation / ${split.test.length} test (seeded split, as lorakit train makes it). `,
  );
  const a = Object.assign(document.createElement('button'), { className: 'link', textContent: 'Download as JSONL' });
  a.onclick = () => download(set.source.endsWith('.jsonl') ? set.source : 'examples.jsonl', labeledSetToJsonl(set), 'application/jsonl');
  el.append(a);
  status('run-status', 'idle', state.runs.length ? 'Ready to train another adapter.' : 'Ready to train.');
  refreshButtons();
}

/** Any problem with new data is shown; the data and runs the page has stay as they were. */
function tryData(make: () => LabeledSet): void {
  try {
    setData(make());
    showError('data-error', null);
  } catch (e) {
    const kept = state.data ? ` Still using ${state.data.source} (${state.data.examples.length} examples).` : '';
    showError('data-error', e instanceof InputError ? e.message + kept : `Could not read the data: ${(e as Error).message}.${kept}`);
  }
}

function wireData(): void {
  const file = input('data-file');
  file.onchange = async () => {
    const f = file.files?.[0];
    if (!f) return;
    const text = await f.text();
    tryData(() => labeledSetFromJsonl(text, f.name));
    file.value = ''; // the same file picked again (after fixing it) fires again
  };
  $('use-boxes').onclick = () =>
    tryData(() =>
      labeledSetFromBoxes([
        { label: input('label-a').value, text: $<HTMLTextAreaElement>('text-a').value },
        { label: input('label-b').value, text: $<HTMLTextAreaElement>('text-b').value },
      ]),
    );
  $('example-boxes').onclick = () => {
    $<HTMLTextAreaElement>('text-a').value = ['A wonderful, moving film.', 'I loved every minute of it.', 'Superb acting and a gripping story.', 'Charming, warm and very funny.', 'One of the best films this year.'].join('\n');
    $<HTMLTextAreaElement>('text-b').value = ['Terrible plot and wooden dialogue.', 'A waste of an evening.', 'Boring, predictable and badly edited.', 'I walked out after half an hour.', 'Poorly written and horribly acted.'].join('\n');
  };
  const tabs: [string, string][] = [['tab-file', 'pane-file'], ['tab-boxes', 'pane-boxes']];
  for (const [tab, pane] of tabs) {
    $(tab).onclick = () => {
      for (const [t, p] of tabs) {
        $(t).setAttribute('aria-selected', String(t === tab));
        $(p).hidden = p !== pane;
      }
    };
  }
}

// ---- settings ----

const TARGET_NAMES = [...new Set(USE_MODULE_NAMES.map((m) => m.split('.').at(-1)!))];

function methodDefaults(method: string): void {
  const d = trainDefaultConfig(method);
  for (const [id, field] of [['rank', 'r'], ['alpha', 'lora_alpha']] as const) {
    const el = input(id);
    el.disabled = !(field in d);
    el.value = field in d ? String(d[field]) : '';
  }
}

function wireSettings(): void {
  const method = $<HTMLSelectElement>('method');
  for (const name of Object.keys(METHODS)) method.append(new Option(name, name, name === DEFAULT_SETTINGS.method, name === DEFAULT_SETTINGS.method));
  method.onchange = () => methodDefaults(method.value);
  methodDefaults(DEFAULT_SETTINGS.method);
  const s = DEFAULT_SETTINGS;
  const values: [string, number][] = [['epochs', s.epochs], ['lr', s.lr], ['batch', s.batchSize], ['seed', s.seed], ['max-len', s.maxLen], ['head-lr', s.headLrScale], ['wd', s.weightDecay], ['warmup', s.warmupRatio], ['clip', s.maxGradNorm]];
  for (const [id, v] of values) input(id).value = String(v);
  const targets = $('targets');
  for (const t of TARGET_NAMES) {
    const label = document.createElement('label');
    const box = Object.assign(document.createElement('input'), { type: 'checkbox', value: t, checked: s.targetModules.includes(t) });
    label.append(box, ` ${t}`);
    targets.append(label);
  }
}

function readSettings(): TrainSettings {
  const num = (id: string, what: string, check: (x: number) => boolean, rule: string): number => {
    const v = Number(input(id).value);
    if (input(id).value.trim() === '' || !check(v)) throw new InputError(`${what} must be ${rule}, got '${input(id).value}'`);
    return v;
  };
  const int = (x: number) => Number.isInteger(x);
  const method = $<HTMLSelectElement>('method').value;
  const targets = [...$('targets').querySelectorAll<HTMLInputElement>('input:checked')].map((b) => b.value);
  if (!targets.length) throw new InputError('Choose at least one module to adapt (More settings → Adapted modules)');
  return {
    method,
    r: input('rank').disabled ? undefined : num('rank', 'Rank', (x) => int(x) && x >= 1, 'a whole number ≥ 1'),
    alpha: input('alpha').disabled ? undefined : num('alpha', 'Alpha', (x) => x > 0, 'a positive number'),
    targetModules: targets,
    epochs: num('epochs', 'Epochs', (x) => int(x) && x >= 1, 'a whole number ≥ 1'),
    lr: num('lr', 'Learning rate', (x) => x > 0 && Number.isFinite(x), 'a positive number'),
    batchSize: num('batch', 'Batch size', (x) => int(x) && x >= 1, 'a whole number ≥ 1'),
    seed: num('seed', 'Seed', int, 'a whole number'),
    maxLen: num('max-len', 'Max length', (x) => int(x) && x >= 1 && x <= 128, 'a whole number from 1 to 128 (the model reads 128 tokens)'),
    headLrScale: num('head-lr', 'Head lr scale', (x) => x > 0, 'a positive number'),
    weightDecay: num('wd', 'Weight decay', (x) => x >= 0, '≥ 0'),
    warmupRatio: num('warmup', 'Warmup ratio', (x) => x >= 0 && x <= 1, 'between 0 and 1'),
    maxGradNorm: num('clip', 'Max grad norm', (x) => x >= 0, '≥ 0 (0 = no clipping)'),
    baseline: input('baseline').checked,
  };
}

// ---- training ----

function refreshButtons(): void {
  const ready = !!state.model && !!state.data && !state.training;
  $<HTMLButtonElement>('train').disabled = !ready;
  $<HTMLButtonElement>('stop').disabled = !state.training;
  $<HTMLButtonElement>('classify').disabled = !state.runs.length || state.training;
}

async function train(): Promise<void> {
  if (!state.model || !state.tokenizer || !state.data || state.training) return;
  let settings: TrainSettings;
  try {
    settings = readSettings();
  } catch (e) {
    showError('run-error', (e as Error).message);
    return;
  }
  showError('run-error', null);
  state.training = true;
  state.stopRequested = false;
  refreshButtons();
  const progress = $<HTMLProgressElement>('run-progress');
  const log = $('step-log').querySelector('tbody')!;
  log.innerHTML = '';
  const plot: PlotData = { loss: [], accuracy: [], totalSteps: 1 };
  const draw = () => ($('plot').innerHTML = plotSvg(plot));
  draw();
  const started = performance.now();
  try {
    const run = await trainRun(state.model, state.tokenizer, state.data, settings, {
      onPhase: (phase, total) => {
        const text = { embed: 'Embedding every example with the frozen encoder (the baseline)…', probe: 'Fitting the frozen-encoder probe…', train: 'Compiling the training step (forward, loss and every adapter gradient as one ONNX graph)…', test: 'Scoring the test split…' }[phase];
        status('run-status', phase, text);
        if (phase === 'train') plot.totalSteps = total;
        progress.max = Math.max(1, total);
        progress.value = 0;
      },
      onEmbed: (n) => (progress.value = n),
      onStep: (s) => {
        progress.value = s.step;
        plot.loss.push([s.step, s.loss]);
        draw();
        const eta = ((performance.now() - started) / s.step) * (s.totalSteps - s.step) / 1000;
        status('run-status', 'train', `Step ${s.step}/${s.totalSteps} · epoch ${s.epoch + 1} · loss ${s.loss.toFixed(4)} · ${Math.round(s.tokensPerSec)} tokens/s · about ${Math.ceil(eta)} s left`);
        const tr = document.createElement('tr');
        tr.dataset.loss = String(s.loss);
        for (const v of [s.step, s.epoch + 1, s.loss.toFixed(5), s.lr.toExponential(2), s.gradNorm.toFixed(3), Math.round(s.tokensPerSec)]) tr.append(Object.assign(document.createElement('td'), { textContent: String(v) }));
        log.append(tr);
      },
      onEpoch: (e) => {
        plot.accuracy.push([plot.loss.at(-1)?.[0] ?? 0, e.valAccuracy]);
        draw();
      },
      shouldStop: () => state.stopRequested,
    });
    const name = `${settings.method}-${state.runs.length + 1}`;
    state.runs.push({ ...run, name });
    state.server!.add(name, run.files());
    addRunRow(state.runs.at(-1)!);
    progress.value = progress.max; // the last phase (scoring the test split) has no steps to count
    const first = run.steps[0]?.loss, last = run.steps.at(-1)?.loss;
    status('run-status', 'done', `${run.stopped ? 'Stopped' : 'Done'}: ${name}, ${run.steps.length} steps in ${run.seconds.toFixed(1)} s, loss ${first?.toFixed(3)} → ${last?.toFixed(3)}; test accuracy ${pct(run.testAccuracy)} (frozen-encoder probe ${pct(run.probeTestAccuracy)}).`);
  } catch (e) {
    status('run-status', 'failed', 'Training stopped with an error; the adapters trained before are kept.');
    showError('run-error', (e as Error).message);
  } finally {
    state.training = false;
    refreshButtons();
  }
}

function addRunRow(run: Run): void {
  const tr = document.createElement('tr');
  tr.dataset.name = run.name;
  const cell = (text: string) => tr.appendChild(Object.assign(document.createElement('td'), { textContent: text }));
  const config = run.settings.r !== undefined ? ` r=${run.methodConfig.r}${run.methodConfig.lora_alpha !== undefined ? ` α=${run.methodConfig.lora_alpha}` : ''}` : '';
  cell(`${run.name} (${run.settings.method}${config})`);
  cell(`${run.data.source}: ${run.data.train}/${run.data.validation}/${run.data.test}`);
  cell(`${run.steps.length}${run.stopped ? ' (stopped)' : ''}`);
  cell(pct(run.testAccuracy)).dataset.value = String(run.testAccuracy);
  cell(pct(run.probeTestAccuracy));
  cell(run.adapterParams.toLocaleString('en'));
  cell(`${run.seconds.toFixed(1)} s`);
  const files = tr.appendChild(document.createElement('td'));
  const zip = Object.assign(document.createElement('button'), { className: 'download', textContent: 'Download .zip' });
  zip.onclick = () => {
    const f: AdapterFiles = run.files((m) => console.warn(m));
    download(`${run.name}.zip`, zipSync(Object.fromEntries([...f].map(([k, v]) => [`${run.name}/${k}`, v]))), 'application/zip');
  };
  files.append(zip);
  for (const [k, v] of run.files()) {
    const link = Object.assign(document.createElement('button'), { className: 'link', textContent: k });
    link.onclick = () => download(k, v, k.endsWith('.json') ? 'application/json' : 'application/octet-stream');
    files.append(' ', link);
  }
  // The same adapter from the command line: the data file the page read, every setting as a flag.
  const cmd = document.createElement('tr');
  cmd.className = 'command';
  const td = cmd.appendChild(Object.assign(document.createElement('td'), { colSpan: 8 }));
  td.append('In Node: ', Object.assign(document.createElement('code'), { textContent: `npx lorakit ${shellWords([...run.command, '--out', `runs/${run.name}`])}` }));
  $('runs').querySelector('tbody')!.append(tr, cmd);
  const box = document.createElement('label');
  box.append(Object.assign(document.createElement('input'), { type: 'checkbox', value: run.name, checked: true }), ` ${run.name}`);
  $('try-adapters').append(box);
}

// ---- inference ----

async function classify(): Promise<void> {
  const names = [...$('try-adapters').querySelectorAll<HTMLInputElement>('input:checked')].map((b) => b.value);
  const texts = $<HTMLTextAreaElement>('try-text').value.split('\n').map((t) => t.trim()).filter(Boolean);
  const table = $('predictions');
  if (!names.length || !texts.length) {
    $('try-how').textContent = !names.length ? 'Tick at least one adapter.' : 'Type at least one text.';
    return;
  }
  const t0 = performance.now();
  const how = state.server!.howServed(names);
  const preds = await state.server!.classify(texts, names);
  $('try-how').textContent = `${texts.length * names.length} predictions (${texts.length} text${texts.length > 1 ? 's' : ''} × ${names.length} adapter${names.length > 1 ? 's' : ''}), ${how}, ${(performance.now() - t0).toFixed(0)} ms. Each adapter was loaded from its downloadable files.`;
  table.innerHTML = '';
  const head = table.appendChild(document.createElement('tr'));
  for (const h of ['text', ...names]) head.append(Object.assign(document.createElement('th'), { textContent: h }));
  preds.forEach((row, i) => {
    const tr = table.appendChild(document.createElement('tr'));
    tr.append(Object.assign(document.createElement('td'), { textContent: texts[i] }));
    for (const p of row) {
      const td = tr.appendChild(document.createElement('td'));
      const best = Math.max(...p.probs);
      td.dataset.adapter = p.adapter;
      td.dataset.probs = JSON.stringify(p.probs);
      td.innerHTML = `<span class="bar" style="width:${Math.round(60 * best)}px"></span>`;
      td.append(`${p.label} (${(100 * best).toFixed(1)}%)`);
    }
  });
}

wireData();
wireSettings();
$('train').onclick = () => void train();
$('stop').onclick = () => {
  state.stopRequested = true;
  status('run-status', 'stopping', 'Stopping after this step…');
};
$('classify').onclick = () => void classify().catch((e) => ($('try-how').textContent = `Could not classify: ${(e as Error).message}`));
void start();
