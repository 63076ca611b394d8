"""Test helper run in a child process: build one framework's trainer from a bundle (the adapter
contract, ``mlx_explore/frameworks/contract.py``) and save (a) the logits of the first training
batch, (b) its weights read back in canonical layout, before any step. Several bundles may follow
one framework: one process (one import of the framework) probes them all.
Usage: python framework_probe.py FRAMEWORK BUNDLE.npz OUT.npz [BUNDLE.npz OUT.npz ...]"""

import sys

import numpy as np

from mlx_explore.bundle import Bundle
from mlx_explore.frameworks import trainer_module

framework, pairs = sys.argv[1], sys.argv[2:]
assert pairs and len(pairs) % 2 == 0, __doc__
for bundle_path, out in zip(pairs[::2], pairs[1::2]):
    bundle = Bundle.load(bundle_path)
    trainer = trainer_module(framework).Trainer(
        bundle.spec, bundle.weights, bundle.config, bundle.inputs(bundle.data.x_train), bundle.data.y_train
    )
    idx = bundle.order.epoch(0)[0]  # the first training batch
    logits = trainer.logits(bundle.inputs(bundle.data.x_train[idx]))
    weights = trainer.weights()
    np.savez(out, logits=logits, **{f"w:{k}": v for k, v in weights.items()})
