// The launcher side of a recipe (src/tasks/recipe/export.ts): launch.sh for
// torchrun or accelerate, accelerate's config file, and, with DeepSpeed ZeRO,
// the DeepSpeed JSON that accelerate's DeepSpeed plugin reads.

export type RecipeEngine = 'torchrun' | 'accelerate';
export type DeepSpeedStage = 'zero2' | 'zero3';

/** The DeepSpeed JSON beside accelerate_config.yaml (its deepspeed_config_file). */
export const DS_CONFIG_FILE = 'ds_config.json';

/** What the DeepSpeed JSON must agree on with recipe.json. */
export interface DeepSpeedSettings {
  stage: 2 | 3;
  perRankBatch: number;
  gradAccumSteps: number;
  /** 0: no clipping. */
  maxGradNorm: number;
}

/**
 * DeepSpeed's config for a recipe. No "optimizer" / "scheduler" sections: train.py
 * hands its torch AdamW and LambdaLR (transformers' schedule formula, which
 * DeepSpeed's own WarmupDecayLR does not have) to accelerate.prepare, and DeepSpeed
 * steps both at each accumulation boundary. Clipping is DeepSpeed's (the script's
 * clip_grad_norm_ is a no-op under it); float32 throughout (bf16 / fp16 off: the
 * recipe replays lorakit's float32 steps; turn bf16 on for speed on GPUs that have it).
 * train_batch_size is "auto": accelerate fills in micro batch × accumulation × processes,
 * so the file holds for any number of nodes.
 */
export function deepSpeedConfig(s: DeepSpeedSettings): Record<string, unknown> {
  return {
    train_micro_batch_size_per_gpu: s.perRankBatch,
    gradient_accumulation_steps: s.gradAccumSteps,
    train_batch_size: 'auto',
    gradient_clipping: s.maxGradNorm,
    zero_optimization: {
      stage: s.stage,
      offload_optimizer: { device: 'none' },
      ...(s.stage === 3 ? { offload_param: { device: 'none' }, stage3_gather_16bit_weights_on_model_save: true } : {}),
    },
    bf16: { enabled: false },
    fp16: { enabled: false },
  };
}

const ACCELERATE_DS_ENV = [
  // What `accelerate launch` sets for a DeepSpeed config (accelerate/utils/launch.py: prepare_deepspeed_cmd_env).
  'export ACCELERATE_USE_DEEPSPEED=true',
  `export ACCELERATE_DEEPSPEED_CONFIG_FILE=${DS_CONFIG_FILE}`,
  'export ACCELERATE_DEEPSPEED_ZERO3_INIT=false',
  'export ACCELERATE_MIXED_PRECISION=no',
  'export ACCELERATE_CONFIG_DS_FIELDS=deepspeed_config_file,zero3_init_flag,deepspeed_multinode_launcher',
];

export function launchScript(engine: RecipeEngine, nproc: number, nnodes: number, backend: string, deepspeed = false): string {
  const common = [
    '#!/bin/sh',
    `# Written by lorakit export-recipe: trains the recipe in this folder with ${engine}${deepspeed ? ' + DeepSpeed ZeRO' : ''}; the adapter lands in out/adapter.`,
    '# NPROC processes per node (NNODES nodes: run this on each with its NODE_RANK and the same MASTER_ADDR / MASTER_PORT).',
    'set -e',
    'cd "$(dirname "$0")"',
    `NPROC=\${NPROC:-${nproc}}`,
    `NNODES=\${NNODES:-${nnodes}}`,
    'NODE_RANK=${NODE_RANK:-0}',
    'MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}',
    'MASTER_PORT=${MASTER_PORT:-29500}',
    'PYTHON=${PYTHON:-python3}',
  ];
  const torchrun = '"$PYTHON" -m torch.distributed.run --nnodes "$NNODES" --node_rank "$NODE_RANK" --nproc_per_node "$NPROC" --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" --redirects 1 --tee 1 train.py';
  if (engine === 'torchrun') {
    return [
      ...common,
      "# --redirects 1 --tee 1: torch 1.13's torchrun on Python 3.11 crashes with their defaults (0; 3 too): its Std.from_str looks",
      '# the value up by iterating an IntFlag, which on 3.11 yields OUT and ERR only. 1 = stdout to the log and the console.',
      `exec ${torchrun} --backend ${backend} "$@"`,
      '',
    ].join('\n');
  }
  return [
    ...common,
    ...(deepspeed
      ? ['# DeepSpeed runs on GPUs: accelerate reads accelerate_config.yaml (distributed_type: DEEPSPEED) and ds_config.json.']
      : [
        '# accelerate launch --cpu --num_processes N runs one process; its multi-process (torchrun) launcher with the device',
        '# forced to the CPU runs N (unset ACCELERATE_TORCH_DEVICE on GPUs).',
        'export ACCELERATE_TORCH_DEVICE=${ACCELERATE_TORCH_DEVICE:-cpu}',
      ]),
    "# torch < 2 on Python >= 3.11 crashes in accelerate's torchrun launcher (torchrun's --redirects default, which accelerate",
    '# launch cannot set): there torchrun is started directly with --redirects 1 --tee 1, and train.py still sets the processes',
    `# up through accelerate (--engine accelerate)${deepspeed ? ', with the environment accelerate launch would give it' : ''}.`,
    'if "$PYTHON" -c "import sys, torch; sys.exit(0 if int(torch.__version__.split(\'.\')[0]) < 2 and sys.version_info >= (3, 11) else 1)"; then',
    ...(deepspeed ? ACCELERATE_DS_ENV.map((l) => '  ' + l) : []),
    `  exec ${torchrun} --engine accelerate --backend ${backend} "$@"`,
    'fi',
    `exec "$PYTHON" -m accelerate.commands.launch --config_file accelerate_config.yaml --num_processes "$(( NPROC * NNODES ))" --num_machines "$NNODES" --machine_rank "$NODE_RANK" --main_process_ip "$MASTER_ADDR" --main_process_port "$MASTER_PORT" train.py --engine accelerate --backend ${backend} "$@"`,
    '',
  ].join('\n');
}

export function accelerateConfig(nproc: number, nnodes: number, deepspeed = false): string {
  return [
    '# accelerate launch --config_file accelerate_config.yaml (written by lorakit export-recipe)',
    'compute_environment: LOCAL_MACHINE',
    ...(deepspeed
      ? [
        'distributed_type: DEEPSPEED',
        'deepspeed_config:',
        // Every ZeRO setting is in the JSON (accelerate refuses stage / accumulation / clipping here beside a config file);
        // standard: each node runs launch.sh (torchrun), no pdsh / hostfile.
        `  deepspeed_config_file: ${DS_CONFIG_FILE}`,
        '  zero3_init_flag: false',
        '  deepspeed_multinode_launcher: standard',
      ]
      // No mixed_precision beside a DeepSpeed config file (accelerate refuses it there; fp16 / bf16 are set in the JSON).
      : ['distributed_type: MULTI_GPU', 'mixed_precision: "no"']),
    `num_processes: ${nproc * nnodes}`,
    `num_machines: ${nnodes}`,
    'machine_rank: 0',
    'main_training_function: main',
    'rdzv_backend: static',
    'same_network: true',
    'use_cpu: false',
    '',
  ].join('\n');
}
