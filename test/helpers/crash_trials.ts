// Crash trials for `lorakit train` (shared by test/crash_safety.test.ts and
// scripts/crash_trials.ts): a run is killed with SIGKILL (as `kill -9`) at
// random moments or at injected points inside checkpoint writes
// (LORAKIT_FAULT, src/util/faults.ts), resumed with --resume, killed again...
// until a run finishes; its adapter file must equal, byte for byte, that of an
// uninterrupted run, and metrics.jsonl must hold every step.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Rng } from '../../src/util/rng.ts';
import { STORY } from './story.ts';

const BIN = new URL('../../bin/lorakit.js', import.meta.url).pathname;
const LLAMA = new URL('../fixtures/hf/llama-tiny', import.meta.url).pathname;
const ENV = { ...process.env, LORAKIT_THREADS: '1' };


export interface CrashSetup {
  dir: string;
  /** `lorakit train` arguments without --out / --resume. */
  args: string[];
  totalSteps: number;
  /** The uninterrupted run's adapter_model.safetensors. */
  reference: Buffer;
  /** The uninterrupted run: ms from taking the run lock (start of fit) to its exit. */
  trainMs: number;
  /** ... and from its first checkpoint to its exit (the steps themselves). */
  stepsMs: number;
}

/** How a killed run left its checkpoints folder. */
export type KillPhase = 'before any checkpoint' | 'checkpoint files being written' | 'checkpoint renamed, latest not yet moved' | 'between checkpoints';

export interface Trial { how: string; signal: string | null; phase: KillPhase; latestStep: number | null }

export async function setupCrashRuns(opts: { epochs?: number; method?: string } = {}): Promise<CrashSetup> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-crash-'));
  const data = path.join(dir, 'story.jsonl');
  fs.writeFileSync(data, STORY.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const epochs = opts.epochs ?? 40;
  const args = ['train', '--task', 'causal-lm', '--model', LLAMA, '--method', opts.method ?? 'lora', '--data', data, '--epochs', String(epochs), '--batch', '2', '--lr', '0.01', '--seed', '3', '--checkpoint-every', '1', '--quiet'];
  const s: CrashSetup = { dir, args, totalSteps: epochs * 3, reference: Buffer.alloc(0), trainMs: 0, stepsMs: 0 };
  const r = await runOnce(s, path.join(dir, 'full'), false);
  if (r.code !== 0) throw new Error(`the uninterrupted run failed: ${r.stderr}`);
  return { ...s, reference: adapterBytes(path.join(dir, 'full')), trainMs: r.trainMs, stepsMs: r.stepsMs };
}

/** Starts `lorakit <args>`, kills it with SIGKILL once `<ckptDir>/checkpoint-<at>` exists; resolves with how it ended. */
export function killAtCheckpoint(args: string[], ckptDir: string, at: number): Promise<{ signal: NodeJS.Signals | null; code: number | null }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: ENV, stdio: 'ignore' });
    const poll = setInterval(() => {
      if (fs.existsSync(path.join(ckptDir, `checkpoint-${at}`))) {
        clearInterval(poll);
        p.kill('SIGKILL');
      }
    }, 5);
    p.on('exit', (code, signal) => {
      clearInterval(poll);
      resolve({ code, signal });
    });
  });
}

export const adapterBytes = (out: string) => fs.readFileSync(path.join(out, 'adapter', 'adapter_model.safetensors'));

function latestStep(ckdir: string): number | null {
  try {
    return Number(/checkpoint-(\d+)/.exec(fs.readFileSync(path.join(ckdir, 'latest'), 'utf8'))![1]);
  } catch {
    return null;
  }
}

/** Where in its checkpointing a killed run was, read from what it left. */
export function killPhase(out: string): KillPhase {
  const ckdir = path.join(out, 'checkpoints');
  if (!fs.existsSync(ckdir)) return 'before any checkpoint';
  const names = fs.readdirSync(ckdir);
  if (names.some((n) => n.startsWith('.tmp-ckpt-') || n.startsWith('.latest.tmp-'))) return 'checkpoint files being written';
  const steps = names.map((n) => /^checkpoint-(\d+)$/.exec(n)).filter(Boolean).map((m) => Number(m![1]));
  if (!steps.length) return 'before any checkpoint';
  const latest = latestStep(ckdir);
  return latest !== Math.max(...steps) ? 'checkpoint renamed, latest not yet moved' : 'between checkpoints';
}

/**
 * One `lorakit train` process, killed `killAfterMs` after `from` if given: the
 * moment it takes the run lock (start of fit: resume, compile, steps ahead)
 * or the first checkpoint it writes (in the middle of its steps).
 */
function runOnce(s: CrashSetup, out: string, resume: boolean, o: { killAfterMs?: number; from?: 'lock' | 'checkpoint'; fault?: string } = {}): Promise<{ code: number | null; signal: string | null; stderr: string; trainMs: number; stepsMs: number }> {
  return new Promise((resolve) => {
    const env = o.fault ? { ...ENV, LORAKIT_FAULT: o.fault } : ENV;
    const p = spawn(process.execPath, [BIN, ...s.args, '--out', out, ...(resume ? ['--resume'] : [])], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    let timer: NodeJS.Timeout | undefined;
    let locked = 0, stepped = 0;
    const startLatest = latestStep(path.join(out, 'checkpoints'));
    const arm = () => {
      if (o.killAfterMs !== undefined && !timer) timer = setTimeout(() => p.kill('SIGKILL'), o.killAfterMs);
    };
    const poll = setInterval(() => {
      if (!locked && fs.existsSync(path.join(out, '.lock'))) {
        locked = performance.now();
        if ((o.from ?? 'lock') === 'lock') arm();
      }
      if (locked && !stepped) {
        const l = latestStep(path.join(out, 'checkpoints'));
        if (l !== null && l !== startLatest) {
          stepped = performance.now();
          if (o.from === 'checkpoint') arm();
        }
      }
      if (locked && stepped) clearInterval(poll);
    }, 1);
    p.on('exit', (code, signal) => {
      clearInterval(poll);
      clearTimeout(timer);
      const now = performance.now();
      resolve({ code, signal, stderr, trainMs: locked ? now - locked : 0, stepsMs: stepped ? now - stepped : 0 });
    });
  });
}

export interface ChainResult { trials: Trial[]; runs: number; identical: boolean; stepsLogged: number; missingSteps: number[]; duplicateSteps: number[] }

async function finish(s: CrashSetup, out: string, trials: Trial[], runs: number): Promise<ChainResult> {
  const last = await runOnce(s, out, true);
  if (last.code !== 0) throw new Error(`the final --resume failed (${last.code ?? last.signal}): ${last.stderr}`);
  const steps = new Set<number>();
  const duplicates: number[] = [];
  for (const line of fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line); // every line is whole JSON: a crash never tears one
    if (r.event === 'step') {
      if (steps.has(r.step)) duplicates.push(r.step); // a resumed run drops what it logs again
      steps.add(r.step);
    }
  }
  const missingSteps = Array.from({ length: s.totalSteps }, (_, i) => i + 1).filter((k) => !steps.has(k));
  return { trials, runs: runs + 1, identical: adapterBytes(out).equals(s.reference), stepsLogged: steps.size, missingSteps, duplicateSteps: duplicates };
}

/**
 * Kills at random moments: each run (the first fresh, then --resume) is killed
 * after a delay drawn from the seeded generator, `kills` times; then a run
 * finishes. Runs that finish before their kill end the chain early.
 */
export async function randomKillChain(s: CrashSetup, kills: number, seed: number, label = 'random'): Promise<ChainResult> {
  const rng = new Rng(seed);
  const out = path.join(s.dir, `${label}-${seed}`);
  const trials: Trial[] = [];
  let runs = 0;
  for (let k = 0; k < kills; k++) {
    // A quarter of the kills timed from the start of fit (loading the checkpoint, compiling), the rest
    // from the run's first checkpoint, within the part of the steps still ahead.
    const from = rng.uniform() < 0.25 ? 'lock' : 'checkpoint';
    const left = 1 - (latestStep(path.join(out, 'checkpoints')) ?? 0) / s.totalSteps;
    const delay = rng.uniformRange(0, Math.max(5, (from === 'lock' ? s.trainMs : s.stepsMs) * left * 0.8));
    const r = await runOnce(s, out, runs > 0, { killAfterMs: delay, from });
    runs++;
    if (r.signal === null) {
      if (r.code !== 0) throw new Error(`run ${runs} failed (${r.code}): ${r.stderr}`);
      return finish(s, out, trials, runs); // finished before its kill: one more --resume must change nothing
    }
    trials.push({ how: `SIGKILL ${delay.toFixed(0)} ms after its ${from === 'lock' ? 'start of fit' : 'first checkpoint'}`, signal: r.signal, phase: killPhase(out), latestStep: latestStep(path.join(out, 'checkpoints')) });
  }
  return finish(s, out, trials, runs);
}

/** The injected kill points: inside every stage of a checkpoint save, and of the final adapter write. */
export const KILL_POINTS = [
  'write:tensors.safetensors', // torn checkpoint tensors
  'write:state.json', // torn state.json
  'checkpoint:written', // complete in .tmp-ckpt-*, not renamed
  'checkpoint:renamed', // renamed, `latest` still names the previous one
  'write:latest', // torn `latest` temp file
  'checkpoint:latest', // `latest` moved, old ones not yet pruned
  'checkpoint:pruning', // an old checkpoint half deleted
  'write:adapter_model.safetensors', // the final adapter file, torn
];

/**
 * Kills at injected points: run i dies at KILL_POINTS[i] on its n-th pass
 * (n drawn from the seeded generator), the next run resumes; then a run finishes.
 */
export async function injectedKillChain(s: CrashSetup, seed: number, points = KILL_POINTS, label = 'injected'): Promise<ChainResult> {
  const rng = new Rng(seed);
  const out = path.join(s.dir, `${label}-${seed}`);
  const trials: Trial[] = [];
  let runs = 0;
  for (const point of points) {
    const n = point.startsWith('write:adapter') ? 1 : 1 + rng.int(4);
    const fault = `${point}@${n}:kill`;
    const r = await runOnce(s, out, runs > 0, { fault });
    runs++;
    if (r.signal !== 'SIGKILL') throw new Error(`LORAKIT_FAULT=${fault}: the run was not killed (${r.code}): ${r.stderr}`);
    trials.push({ how: `killed at ${point} (pass ${n})`, signal: r.signal, phase: killPhase(out), latestStep: latestStep(path.join(out, 'checkpoints')) });
  }
  return finish(s, out, trials, runs);
}

export function summarize(r: ChainResult): string {
  const by = new Map<string, number>();
  for (const t of r.trials) by.set(t.phase, (by.get(t.phase) ?? 0) + 1);
  const steps = [...new Set(r.trials.map((t) => t.latestStep ?? 0))].sort((a, b) => a - b);
  return `${r.trials.length} kills in ${r.runs} runs (${[...by].map(([k, v]) => `${v} ${k}`).join(', ')}; latest checkpoint at the kills: step ${steps.join(', ')}); final adapter ${r.identical ? 'identical to' : 'DIFFERENT from'} the uninterrupted run's; ${r.stepsLogged} steps logged${r.missingSteps.length ? `, MISSING ${r.missingSteps.join(',')}` : ''}${r.duplicateSteps.length ? `, TWICE ${r.duplicateSteps.join(',')}` : ', each once'}`;
}
