"""Test helper run in a child process (one framework per process): for each of ``logreg``, ``mlp``
and ``cnn`` the framework expresses (the sequence models' and boosted trees' exports are not
covered here), train a few SGD steps on ``digits``, run ``deploy.export_phase`` and check the file it
wrote independently with ONNX Runtime; then run ``export_phase`` on exports that must fail. Prints
one JSON object on the last line of standard output:

``{"models": {kind: {"metrics", "notes", "check": {"max_abs_diff", "shape", "dtype", "batch_dim",
"dynamic_ok"}}}, "failures": {case: {"metrics", "notes"}}, "seconds": {kind: s}}``

Usage: python onnx_driver.py FRAMEWORK OUT_DIR
"""

import json
import os
import sys
import time
import types
from pathlib import Path

import numpy as np

from mlx_explore import deploy
from mlx_explore.bundle import prepare
from mlx_explore.config import RunConfig
from mlx_explore.frameworks import REGISTRY, trainer_module

STEPS, LATENCY_CALLS, THREADS = 5, 20, 1
#: The model kinds whose exports are checked.
KINDS = ("logreg", "mlp", "cnn")

framework, out_dir = sys.argv[1], Path(sys.argv[2])


def check(path: str, x: np.ndarray, native: np.ndarray) -> dict:
    """ONNX Runtime on the written file, apart from ``deploy``: logits against the framework's, the
    output's shape and dtype, and the input's batch dimension (a name, not a number: dynamic)."""
    import onnx
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    out = sess.run(None, {name: x})[0]
    three = sess.run(None, {name: x[:3]})[0]  # another batch size than the export's example
    dim = onnx.load(path).graph.input[0].type.tensor_type.shape.dim[0]
    return {
        "max_abs_diff": float(np.max(np.abs(out - native))),
        "shape": list(out.shape), "dtype": str(out.dtype), "batch_dim": dim.dim_param or dim.dim_value,
        "dynamic_ok": bool(np.allclose(three, out[:3], rtol=1e-5, atol=1e-6)),
    }  # fmt: skip


result = {"models": {}, "failures": {}, "seconds": {}}
trainer = x = native = first = None
for kind in [k for k in REGISTRY[framework].models if k in KINDS]:
    t0 = time.perf_counter()
    config = RunConfig.build(frameworks=[framework], model=kind, dataset="digits", hidden=(16,), epochs=1,
                             batch_size=32, optimizer="sgd", lr=0.1, mode="eager", device="cpu", threads=THREADS)  # fmt: skip
    bundle = prepare(config)
    module = trainer_module(framework)
    module.configure(config, THREADS)
    trainer = module.Trainer(bundle.spec, bundle.weights, config, bundle.inputs(bundle.data.x_train), bundle.data.y_train)
    rows = trainer.indices(bundle.order.first_steps(STEPS))
    trainer.losses([trainer.train_step(rows[i]) for i in range(STEPS)])
    x = bundle.inputs(bundle.data.x_test)
    native = trainer.logits(x)
    metrics, notes = deploy.export_phase(framework, trainer, x, native, str(out_dir / kind), LATENCY_CALLS, THREADS)
    entry = {"metrics": metrics, "notes": notes, "native_shape": list(native.shape)}
    if metrics["onnx_path"]:
        entry["check"] = check(metrics["onnx_path"], x, native)
    result["models"][kind] = entry
    result["seconds"][kind] = time.perf_counter() - t0
    first = first or (trainer, x, native)  # the failure cases use the first model (logreg exports everywhere)

# Exports that must fail, each with None figures and a note, never an exception.
trainer, x, native = first
blocker = out_dir / "a-file"
blocker.write_text("not a folder")
cases = {
    "model_not_exportable": (types.SimpleNamespace(model=object(), params={}), x, native, out_dir / "fake"),
    "broken_path": (trainer, x, native, blocker / "sub"),
    "logits_of_another_shape": (trainer, x, native[:, :1], out_dir / "shape"),
}
for case, (tr, xs, logits, where) in cases.items():
    result["failures"][case] = dict(zip(("metrics", "notes"), deploy.export_phase(framework, tr, xs, logits, str(where),
                                                                                   LATENCY_CALLS, THREADS)))  # fmt: skip

result["versions"] = deploy.versions(framework)
sys.stdout.flush()
os.write(1, b"\n")
print(json.dumps(result))
