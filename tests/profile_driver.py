"""Test helper run in a child process: profile one framework's training steps, as the worker's
profiling phase does (``mlx_explore.profiling.profile_steps``), and print the normalized profile as
one JSON object on the last line of standard output.

Usage: python profile_driver.py FRAMEWORK OUT_DIR [KEY=VALUE ...]
KEY=VALUE are ``RunConfig`` fields (``model=mlp batch_size=1024 hidden=1024,1024 dataset=synthetic
n_features=784 n_samples=6000 mode=compiled``) plus ``steps=K`` (profiled steps, default 5).

With ``failing=1`` it instead checks the framework's ``profile`` against a step that raises: it calls
``profile`` with a ``run_step`` that raises at step 1 of 3 (into ``OUT_DIR/a``), then profiles 2
good steps (into ``OUT_DIR/b``: a profiler session left open would make this raise), and prints
``{"raised", "written" (files under a), "unmapped", "ops" (name: calls over the 2 steps), "events",
"notes"}`` from the second profile.
"""

import importlib
import json
import sys
from pathlib import Path

from mlx_explore import profiling
from mlx_explore.bundle import prepare
from mlx_explore.config import RunConfig
from mlx_explore.frameworks import trainer_module

framework, out_dir, *pairs = sys.argv[1:]
kw = dict(p.split("=", 1) for p in pairs)
steps = int(kw.pop("steps", 5))
failing = kw.pop("failing", "0") == "1"
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

if not failing:
    profile = profiling.profile_steps(framework, trainer, bundle, steps, out_dir)
    print(json.dumps(profile.to_dict()))
    sys.exit(0)

profile = importlib.import_module(f"mlx_explore.frameworks.{framework}.profile").profile
out = Path(out_dir)
rows = trainer.indices(bundle.order.first_steps(4))


def step(i):
    trainer.losses([trainer.train_step(rows[i])])


def failing_step(i):
    step(i)
    if i == 1:
        raise ValueError("step 1 failed")


step(0)  # compiled or traced outside the profiled steps
raised = None
try:
    profile(failing_step, 3, out / "a", trainer)
except ValueError as e:
    raised = str(e)
raw = profile(step, 2, out / "b", trainer)
print(json.dumps({"raised": raised, "written": [str(p) for p in (out / "a").rglob("*") if p.is_file()],
                  "unmapped": [o.name for o in raw.ops if profiling.categorize(framework, o.name, o.hint) is None],
                  "ops": {o.name: o.calls for o in raw.ops}, "events": len(raw.step_events), "notes": raw.notes}))
