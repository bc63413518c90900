// `lorakit export-recipe --engine accelerate --deepspeed zero2|zero3`: the
// DeepSpeed JSON agrees with recipe.json (micro batch = per-rank batch,
// accumulation, clipping, ZeRO stage, float32), and with what accelerate 1.2.1
// made of the same files (test/fixtures/recipe_deepspeed.json, pinned by
// tools/reference/recipe_deepspeed.ts with accelerate's own parsing: ClusterConfig,
// the launcher's environment, DeepSpeedPlugin, the fill before deepspeed.initialize).
// DeepSpeed is not installed here: nothing trains through it in this test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exportRecipe } from '../src/tasks/recipe/export.ts';

const FIX = new URL('./fixtures/', import.meta.url).pathname;
const pinned = JSON.parse(fs.readFileSync(path.join(FIX, 'recipe_deepspeed.json'), 'utf8'));
const read = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8'));

test("export-recipe --deepspeed: ds_config.json = recipe.json's settings = what accelerate's DeepSpeed plugin read", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-recipe-ds-'));
  const data = path.join(dir, 'data.jsonl');
  fs.writeFileSync(data, pinned.data.map((r: object) => JSON.stringify(r)).join('\n') + '\n');
  assert.equal(pinned.cases.length, 2);
  for (const c of pinned.cases) {
    const R = path.join(dir, c.deepspeed);
    const { recipe } = await exportRecipe({ ...c.flags, engine: 'accelerate', deepspeed: c.deepspeed, nproc: c.nproc, nnodes: c.nnodes, model: path.join(FIX, 'hf/llama-tiny'), data, out: R });
    const stage = c.deepspeed === 'zero3' ? 3 : 2;
    assert.deepEqual(recipe.deepspeed, { zero_stage: stage, config_file: 'ds_config.json' });
    const ds = read(path.join(R, 'ds_config.json'));
    // The JSON against recipe.json.
    assert.equal(ds.train_micro_batch_size_per_gpu, recipe.batch.per_rank_batch);
    assert.equal(ds.gradient_accumulation_steps, recipe.batch.grad_accum_steps);
    assert.equal(ds.gradient_clipping, recipe.clip.max_grad_norm);
    assert.equal(ds.zero_optimization.stage, stage);
    assert.equal(ds.zero_optimization.offload_optimizer.device, 'none');
    assert.deepEqual([ds.bf16.enabled, ds.fp16.enabled], [false, false]);
    assert.ok(!('optimizer' in ds) && !('scheduler' in ds), "train.py's AdamW and LambdaLR, not DeepSpeed's");
    // What accelerate read from the same files: the plugin's settings are recipe.json's ...
    const a = c.accelerate;
    assert.equal(a.cluster.distributed_type, 'DistributedType.DEEPSPEED');
    assert.deepEqual(a.plugin, {
      zero_stage: stage, gradient_accumulation_steps: recipe.batch.grad_accum_steps, gradient_clipping: recipe.clip.max_grad_norm,
      offload_optimizer_device: 'none', offload_param_device: 'none', zero3_init_flag: false, zero3_save_16bit_model: stage === 3,
    });
    // ... the config handed to deepspeed.initialize is today's file with accelerate's fill (global batch over all processes) ...
    const { train_batch_size: tbs, zero_allow_untested_optimizer: untested, ...rest } = a.deepspeed_config;
    const world = c.nproc * c.nnodes;
    assert.equal(recipe.batch.world_size, world);
    assert.deepEqual([a.cluster.num_processes, a.cluster.num_machines], [world, c.nnodes]);
    assert.equal(tbs, recipe.batch.per_rank_batch * recipe.batch.grad_accum_steps * world);
    assert.ok(tbs >= recipe.batch.global_batch, 'the micro-batches of all processes hold a global batch');
    assert.equal(untested, true);
    const { train_batch_size: auto, ...written } = ds;
    assert.equal(auto, 'auto');
    assert.deepEqual(rest, written, 'ds_config.json drifted from what accelerate read: rerun tools/reference/recipe_deepspeed.ts');
    // ... and the accelerate config and launch.sh's own path (torch < 2) give train.py accelerate launch's environment.
    assert.deepEqual(c.accelerate.cluster.deepspeed_config, { deepspeed_config_file: 'ds_config.json', zero3_init_flag: false, deepspeed_multinode_launcher: 'standard' });
    const yaml = fs.readFileSync(path.join(R, 'accelerate_config.yaml'), 'utf8');
    assert.match(yaml, /distributed_type: DEEPSPEED\ndeepspeed_config:\n {2}deepspeed_config_file: ds_config.json\n {2}zero3_init_flag: false\n {2}deepspeed_multinode_launcher: standard\n/);
    assert.doesNotMatch(yaml, /mixed_precision/, 'accelerate refuses mixed_precision beside a DeepSpeed config file');
    const exported = Object.fromEntries([...fs.readFileSync(path.join(R, 'launch.sh'), 'utf8').matchAll(/export (ACCELERATE_\w+)=(\S+)/g)].map((m) => [m[1], m[2]]));
    assert.deepEqual(exported, a.launch_env);
    assert.match(fs.readFileSync(path.join(R, 'launch.sh'), 'utf8'), new RegExp(`NNODES=\\$\\{NNODES:-${c.nnodes}\\}`));
  }
});

test('export-recipe --deepspeed: only with accelerate and the transformers + PEFT backend', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-recipe-ds-'));
  const data = path.join(dir, 'data.jsonl');
  fs.writeFileSync(data, pinned.data.map((r: object) => JSON.stringify(r)).join('\n') + '\n');
  const base = { model: path.join(FIX, 'hf/llama-tiny'), data, methodConfig: {}, epochs: 1, lr: 0.01, batchSize: 4, seed: 1 };
  await assert.rejects(exportRecipe({ ...base, engine: 'torchrun', deepspeed: 'zero2', out: path.join(dir, 'a') }), /--deepspeed zero2 is an option of --engine accelerate/);
  await assert.rejects(exportRecipe({ ...base, engine: 'accelerate', backend: 'plain', deepspeed: 'zero3', out: path.join(dir, 'b') }), /drop --backend plain/);
  await exportRecipe({ ...base, engine: 'accelerate', out: path.join(dir, 'c') });
  assert.ok(!fs.existsSync(path.join(dir, 'c', 'ds_config.json')), 'no DeepSpeed file without --deepspeed');
  assert.match(fs.readFileSync(path.join(dir, 'c', 'accelerate_config.yaml'), 'utf8'), /distributed_type: MULTI_GPU\nmixed_precision: "no"/);
});
