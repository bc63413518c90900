#!/usr/bin/env python3
"""What accelerate makes of a recipe's DeepSpeed files, without DeepSpeed installed.

Usage (in the PEFT environment): run.sh accelerate_deepspeed_config.py RECIPE_DIR NUM_PROCESSES (over all nodes)

Runs accelerate's own code on RECIPE_DIR/accelerate_config.yaml as `accelerate launch --config_file`
does (ClusterConfig, the launch argument checks, the DeepSpeed launcher's environment), builds the
DeepSpeedPlugin a training script gets from that environment, and fills the config as
Accelerator.prepare does before it calls deepspeed.initialize (accelerate 1.2.1:
_prepare_deepspeed). Prints JSON: the ClusterConfig fields, the plugin's settings and the final
DeepSpeed config. Called by tools/reference/recipe_deepspeed.ts.
"""
import json
import os
import sys

recipe_dir, nproc = sys.argv[1], int(sys.argv[2])
os.chdir(recipe_dir)  # launch.sh runs there: ds_config.json is relative to it

from accelerate.commands.config.config_args import load_config_from_file
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils import DeepSpeedPlugin
from accelerate.utils.launch import prepare_deepspeed_cmd_env

cluster = load_config_from_file("accelerate_config.yaml")
args = launch_command_parser().parse_args(["--config_file", "accelerate_config.yaml", "--num_processes", str(nproc), "--main_process_port", "29731", "train.py"])
args, defaults, mp_from_config = _validate_launch_command(args)
if not args.use_deepspeed:
    raise SystemExit("accelerate does not read this config as a DeepSpeed one")
# launch_command's DeepSpeed branch, then deepspeed_launcher's environment (it only adds the torchrun call after this).
args.deepspeed_fields_from_accelerate_config = ",".join(list(defaults.deepspeed_config.keys()) + (["mixed_precision"] if mp_from_config else []))
_, env = prepare_deepspeed_cmd_env(args)
os.environ.update({k: v for k, v in env.items() if k.startswith("ACCELERATE_")})

plugin = DeepSpeedPlugin()  # what Accelerator() builds in the training script from that environment
plugin.set_mixed_precision(os.environ["ACCELERATE_MIXED_PRECISION"])
micro = plugin.get_value("train_micro_batch_size_per_gpu")
gas = plugin.get_value("gradient_accumulation_steps")
if micro == "auto":
    raise SystemExit("train_micro_batch_size_per_gpu is 'auto': train.py passes no dataloader to accelerate.prepare")
# Accelerator._prepare_deepspeed: fill the "auto" values, then hand the config to deepspeed.initialize.
plugin.deepspeed_config_process(must_match=False, **{
    "gradient_clipping": 1.0,
    "zero_optimization.stage3_gather_16bit_weights_on_model_save": False,
    "train_micro_batch_size_per_gpu": micro,
    "train_batch_size": micro * gas * nproc,
})
plugin.deepspeed_config["zero_allow_untested_optimizer"] = True  # a torch optimizer handed to prepare
final = {k: v for k, v in plugin.deepspeed_config.items() if k != "steps_per_print"}
print(json.dumps({
    "cluster": {"distributed_type": str(cluster.distributed_type), "deepspeed_config": cluster.deepspeed_config, "mixed_precision": cluster.mixed_precision,
                "num_processes": cluster.num_processes, "num_machines": cluster.num_machines},
    "launch_env": {k: env[k] for k in sorted(env) if k.startswith("ACCELERATE_")},
    "plugin": {k: getattr(plugin, k) for k in ("zero_stage", "gradient_accumulation_steps", "gradient_clipping", "offload_optimizer_device", "offload_param_device", "zero3_init_flag", "zero3_save_16bit_model")},
    "deepspeed_config": final,
}))
