"""Training scikit-learn's ``MLPClassifier`` from the canonical weights, one ``partial_fit`` per batch.

Loading: ``MLPClassifier`` has no public way to start from given weights. A first ``partial_fit``
allocates ``coefs_`` (kernels, ``(in, out)``: the canonical layout) and ``intercepts_``; the
canonical weights are then copied into those arrays in place and the solver state is dropped, so
the next ``partial_fit`` starts from step 0 with zero velocities/moments. ``partial_fit`` reads
the arrays afresh each call (``sklearn/neural_network/_multilayer_perceptron.py``, ``_fit_stochastic``).

Binary tasks: scikit-learn uses one logistic output unit, not two logits. The equivalent start is
loaded (``w = W[:, 1] - W[:, 0]``, since ``softmax([z0, z1])[1] == sigmoid(z1 - z0)``), so the
initial model is the same function, but SGD on that parametrization takes different steps: the
per-step parity check for scikit-learn covers multiclass tasks only.

Optimizers (scikit-learn's ``_stochastic_optimizers.py``): ``momentum`` uses
``u = m u - lr g; p += u`` (same iterates as PyTorch for a constant lr); ``adam`` puts epsilon
on ``sqrt(v)`` before bias correction, like Keras. Loss: the same mean cross-entropy, computed
on probabilities clipped to ``[eps, 1 - eps]`` (float32 eps), with ``alpha=0``.
Runs on the CPU only; it has no compile step.
"""

from __future__ import annotations

import numpy as np
import sklearn
from threadpoolctl import threadpool_info, threadpool_limits

from ..common import DeviceUnavailable
from .models import mlp


def configure(config, threads: int) -> dict:
    """Limit the BLAS and OpenMP pools scikit-learn computes with to ``threads`` and read them back
    (``threadpoolctl``, https://github.com/joblib/threadpoolctl)."""
    threadpool_limits(limits=threads)
    pools = threadpool_info()
    return {
        "intra_op_threads": max((p["num_threads"] for p in pools), default=1),
        "thread_pools": {f"{p['user_api']}:{p['internal_api']}": p["num_threads"] for p in pools},
        "precision": "fp32 inputs, float32 computation (MLPClassifier follows the input dtype)",
        "compile": "none (NumPy, one mode)",
    }


class Trainer:
    """scikit-learn implementation of ``frameworks.common.TrainerProtocol``."""

    name = "sklearn"

    def __init__(self, spec, weights, config, x_train, y_train):
        if spec.kind == "cnn":
            raise NotImplementedError("scikit-learn has no convolutional layers")
        if config.device in ("gpu", "tpu"):
            raise DeviceUnavailable(f"scikit-learn runs on the CPU only (asked for {config.device})")
        self.spec, self.config = spec, config
        self.device, self.device_name, self.device_kind = "cpu", "cpu", "cpu"
        self.x, self.y = x_train, y_train
        self.classes = np.arange(spec.n_classes)
        self.model = mlp(spec.hidden, spec.activation, config.optimizer, config.lr, config.momentum, config.batch_size, config.seed)
        self.model.partial_fit(x_train[: config.batch_size], y_train[: config.batch_size], classes=self.classes)
        kernels = [weights[k] for k in weights if k.endswith("/kernel")]
        biases = [weights[k] for k in weights if k.endswith("/bias")]
        if spec.n_classes == 2:  # one logistic unit: logit difference
            kernels[-1] = kernels[-1][:, 1:] - kernels[-1][:, :1]
            biases[-1] = biases[-1][1:] - biases[-1][:1]
        for dst, src in zip(self.model.coefs_ + self.model.intercepts_, kernels + biases, strict=True):
            dst[...] = src
        del self.model._optimizer  # restart the solver from step 0
        # partial_fit would rebuild RandomState(seed) on every call (~120 us); hand it the generator
        # it already made (nothing is drawn from it with shuffle=False, so results are unchanged).
        self.model.random_state = self.model._random_state

    def indices(self, rows):
        return rows

    def train_step(self, idx):
        self.model.partial_fit(self.x[idx], self.y[idx])
        return self.model.loss_

    def losses(self, handles):
        return np.asarray(handles, dtype=np.float64)

    def logits(self, x):
        # Log-probabilities are logits of the same softmax; clipped so a saturated 0 stays finite.
        return np.log(np.clip(self.model.predict_proba(x), 1e-30, 1.0)).astype(np.float32)

    def weights(self):
        names = list(self.spec.shapes())
        kernels = [k.copy() for k in self.model.coefs_]
        biases = [b.copy() for b in self.model.intercepts_]
        out = {}
        for i, (k, b) in enumerate(zip(kernels, biases)):
            out[names[2 * i]], out[names[2 * i + 1]] = k, b
        return out

    @staticmethod
    def versions() -> dict[str, str]:
        return {"scikit-learn": sklearn.__version__}


def list_devices() -> list[str]:
    """scikit-learn computes on the CPU only."""
    return ["cpu"]
