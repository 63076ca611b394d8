"""Test helper run in a child process: profile one framework's training steps, as the worker's
profiling phase does (``mlx_explore.profiling.profile_steps``), and print the normalized profile as
one JSON object on the last line of standard output.

Usage: python profile_driver.py FRAMEWORK OUT_DIR [KEY=VALUE ...]
KEY=VALUE are ``RunConfig`` fields (``model=mlp batch_size=1024 hidden=1024,1024 dataset=synthetic
n_features=784 n_samples=6000 mode=compiled``) plus ``steps=K`` (profiled steps, default 5).
"""

import json
import sys

from mlx_explore import profiling
from mlx_explore.bundle import prepare
from mlx_explore.config import RunConfig
from mlx_explore.frameworks import trainer_module

framework, out_dir, *pairs = sys.argv[1:]
kw = dict(p.split("=", 1) for p in pairs)
steps = int(kw.pop("steps", 5))
if "hidden" in kw:
    kw["hidden"] = tuple(int(h) for h in kw["hidden"].split(","))
for key in ("batch_size", "n_features", "n_samples", "n_classes", "epochs", "threads"):
    if key in kw:
        kw[key] = int(kw[key])
config = RunConfig.build(**{"frameworks": [framework], "epochs": 1, "optimizer": "sgd", "lr": 0.05, **kw})
bundle = prepare(config)
module = trainer_module(framework)
module.configure(config, config.threads or 2)
trainer = module.Trainer(bundle.spec, bundle.weights, config, bundle.inputs(bundle.data.x_train), bundle.data.y_train)
profile = profiling.profile_steps(framework, trainer, bundle, steps, out_dir)
print(json.dumps(profile.to_dict()))
