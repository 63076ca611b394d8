"""Training PyTorch models from the canonical weights (the adapter contract: ``frameworks/contract.py``).

Loading (``docs/architecture.md``, "Same start"): ``Linear.weight = kernel.T``;
``Conv2d.weight = kernel.transpose(3, 2, 0, 1)`` (HWIO -> OIHW); the first dense layer after the
convolutions also has its input rows reordered from (H, W, C) to PyTorch's (C, H, W) flatten order.
The sequence models load through ``load_state_dict`` (:func:`state_dict`): ``nn.GRU``'s
``weight_ih_l0 (3H, D) = kernel.T`` and ``weight_hh_l0 = recurrent_kernel.T`` (PyTorch's gate order
r, z, n is the canonical one), ``bias_ih_l0 = bias``, ``bias_hh_l0 = recurrent_bias``; attention's
``in_proj_weight (3d, d)`` stacks the query, key and value kernels, each ``(d, heads, d_head)``
reshaped to ``(d, d)`` (head-major columns, as PyTorch splits its heads) and transposed,
``in_proj_bias`` their flattened biases, ``out_proj.weight = out_kernel.reshape(d, d).T``; layer
norms ``weight = scale``.

Optimizers (``torch.optim``, https://pytorch.org/docs/stable/optim.html):
``sgd`` = ``SGD(lr)``; ``momentum`` = ``SGD(lr, momentum=m)``, i.e. ``v = m v + g; p -= lr v``;
``adam`` = ``Adam(lr, betas=(0.9, 0.999), eps=1e-8)``, epsilon added to ``sqrt(v_hat)``.

Compile mode: ``eager`` runs the module as is; ``compiled`` wraps the whole training step
(forward, backward, optimizer) in ``torch.compile``, and inference in ``torch.compile(model)``.
Dynamo does not trace ``nn.GRU`` (``torch._dynamo.config.allow_rnn`` is off by default, and
experimental): the GRU layer runs as its eager ATen / cuDNN kernel between compiled graphs.

Precision and TF32: ``configure`` turns TF32 off in both precisions
(``torch.set_float32_matmul_precision("highest")``, ``torch.backends.cuda.matmul.allow_tf32 =
False``, ``torch.backends.cudnn.allow_tf32 = False``; PyTorch's own default leaves TF32 on for cuDNN
convolutions), and nothing turns it back on. ``fp32``: matmuls and convolutions run in full float32.
``bf16``: forward and loss run under ``torch.autocast(dtype=torch.bfloat16)`` with float32
parameters (https://pytorch.org/docs/stable/amp.html): matmuls and convolutions run in bfloat16,
and the ops autocast keeps in float32 (the loss's log-softmax) run in full float32, never TF32.
TF32 exists only on NVIDIA GPUs (Ampere and later); the flags are read back into the run's ``tf32``.

Private API (checked against torch 2.13.0; ``tests/test_adapters.py`` fails when it changes):
``torch._inductor.runtime.cache_dir_utils.cache_dir()``, inductor's on-disk cache folder
(``TORCHINDUCTOR_CACHE_DIR`` or a per-user folder under the temporary directory), read in
``configure`` for ``compiled`` runs only.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

from ..common import batched
from ..contract import DEVICE_KINDS, DeviceUnavailable
from ...models import FFN_MULT, LN_EPS
from .models import CNN, GRU, MLP, Transformer

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


def select_device(kind: str) -> torch.device:
    """``auto``: CUDA, else Apple MPS, else CPU. Raises DeviceUnavailable for a missing ``gpu``
    and for ``tpu`` (torch_xla is not driven here), ValueError for an unknown kind."""
    if kind not in DEVICE_KINDS:
        raise ValueError(f"unknown device kind {kind!r}; allowed: {', '.join(DEVICE_KINDS)}")
    if kind in ("auto", "gpu") and torch.cuda.is_available():
        return torch.device("cuda", 0)
    if kind in ("auto", "gpu") and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    if kind == "gpu":
        raise DeviceUnavailable("PyTorch sees no GPU (torch.cuda.is_available() is False)")
    if kind == "tpu":
        raise DeviceUnavailable("TPU needs torch_xla, which this project does not drive")
    return torch.device("cpu")


def configure(config, threads: int) -> dict:
    """Put the fairness settings in force before anything runs, and read them back.

    ``torch.set_num_threads(threads)`` and as many inter-op threads; TF32 off in both precisions
    (module docstring); deterministic algorithms on with ``config.deterministic``
    (``CUBLAS_WORKSPACE_CONFIG`` is set by the runner,
    https://pytorch.org/docs/stable/notes/randomness.html). ``compile_cache`` says whether
    inductor's on-disk cache already held entries: a warm cache makes ``compile_s`` far smaller.
    """
    torch.set_num_threads(threads)
    if torch.get_num_interop_threads() != threads:
        torch.set_num_interop_threads(threads)  # allowed once, before any inter-op work
    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.use_deterministic_algorithms(config.deterministic)
    flags = {
        "intra_op_threads": torch.get_num_threads(),
        "inter_op_threads": torch.get_num_interop_threads(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "tf32": bool(torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "precision": config.precision,
        "compile": "torch.compile (inductor)" if config.mode == "compiled" else "eager",
    }
    if config.mode == "compiled":
        # Private (torch 2.13.0): inductor has no public way to name its cache folder.
        from torch._inductor.runtime.cache_dir_utils import cache_dir

        warm = os.path.isdir(cache_dir()) and any(os.scandir(cache_dir()))
        flags["compile_cache"] = f"{'warm' if warm else 'cold'} ({cache_dir()})"
    return flags


def build_model(spec, config) -> torch.nn.Module:
    """The ``torch.nn.Module`` for a ``ModelSpec``, on the CPU, in float32 (bf16 is autocast at run
    time, so ``config`` does not change the module)."""
    if spec.kind == "cnn":
        h, w, c = spec.image_shape
        return CNN(c, h, w, spec.n_classes, spec.channels, spec.kernel_size, spec.dense)
    if spec.kind == "gru":
        return GRU(spec.seq_shape[1], spec.d_model, spec.n_classes)
    if spec.kind == "transformer":
        t, d_in = spec.seq_shape
        return Transformer(t, d_in, spec.d_model, spec.n_classes, spec.heads, spec.layers, FFN_MULT, LN_EPS)
    return MLP(spec.n_features, spec.hidden, spec.n_classes, spec.activation)


def _layers(model):
    return [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]


def _flat_rows(spec) -> tuple[int, int, int]:
    """(H, W, C) of the feature map the CNN's first dense layer flattens."""
    return spec.image_shape[0] // 4, spec.image_shape[1] // 4, spec.channels[1]


_QKV = ("query", "key", "value")


def state_dict(spec, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The ``state_dict`` (names and layouts) of the ``gru`` or ``transformer`` module holding the
    canonical ``weights`` (conversion in the module docstring; :func:`canonical_weights` inverts it)."""
    w = weights
    if spec.kind == "gru":
        out = {
            "gru.weight_ih_l0": w["gru/kernel"].T, "gru.weight_hh_l0": w["gru/recurrent_kernel"].T,
            "gru.bias_ih_l0": w["gru/bias"], "gru.bias_hh_l0": w["gru/recurrent_bias"],
        }  # fmt: skip
    else:
        d = spec.d_model
        out = {"embed.weight": w["embed/kernel"].T, "embed.bias": w["embed/bias"], "pos_embedding": w["pos/embedding"]}
        for i in range(spec.layers):
            b, p = f"block_{i}", f"encoder.layers.{i}"
            out |= {
                f"{p}.self_attn.in_proj_weight": np.concatenate([w[f"{b}/attn/{q}/kernel"].reshape(d, d).T for q in _QKV]),
                f"{p}.self_attn.in_proj_bias": np.concatenate([w[f"{b}/attn/{q}/bias"].reshape(d) for q in _QKV]),
                f"{p}.self_attn.out_proj.weight": w[f"{b}/attn/out/kernel"].reshape(d, d).T,
                f"{p}.self_attn.out_proj.bias": w[f"{b}/attn/out/bias"],
                f"{p}.linear1.weight": w[f"{b}/ffn_0/kernel"].T, f"{p}.linear1.bias": w[f"{b}/ffn_0/bias"],
                f"{p}.linear2.weight": w[f"{b}/ffn_1/kernel"].T, f"{p}.linear2.bias": w[f"{b}/ffn_1/bias"],
                f"{p}.norm1.weight": w[f"{b}/ln_1/scale"], f"{p}.norm1.bias": w[f"{b}/ln_1/bias"],
                f"{p}.norm2.weight": w[f"{b}/ln_2/scale"], f"{p}.norm2.bias": w[f"{b}/ln_2/bias"],
            }  # fmt: skip
        out |= {"encoder.norm.weight": w["ln_f/scale"], "encoder.norm.bias": w["ln_f/bias"]}
    out |= {"classifier.weight": w["dense_0/kernel"].T, "classifier.bias": w["dense_0/bias"]}
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def canonical_weights(spec, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The canonical weights (names, order, layouts) of a ``gru`` or ``transformer`` module's
    ``state``, its ``state_dict`` as NumPy arrays: the inverse of :func:`state_dict`, exact."""
    s = state
    if spec.kind == "gru":
        out = {
            "gru/kernel": s["gru.weight_ih_l0"].T, "gru/recurrent_kernel": s["gru.weight_hh_l0"].T,
            "gru/bias": s["gru.bias_ih_l0"], "gru/recurrent_bias": s["gru.bias_hh_l0"],
        }  # fmt: skip
    else:
        d, nh, dh = spec.d_model, spec.heads, spec.d_head
        out = {"embed/kernel": s["embed.weight"].T, "embed/bias": s["embed.bias"], "pos/embedding": s["pos_embedding"]}
        for i in range(spec.layers):
            b, p = f"block_{i}", f"encoder.layers.{i}"
            kernels = np.split(s[f"{p}.self_attn.in_proj_weight"], 3)
            biases = np.split(s[f"{p}.self_attn.in_proj_bias"], 3)
            out |= {f"{b}/ln_1/scale": s[f"{p}.norm1.weight"], f"{b}/ln_1/bias": s[f"{p}.norm1.bias"]}
            for q, k, bias in zip(_QKV, kernels, biases):
                out |= {f"{b}/attn/{q}/kernel": k.T.reshape(d, nh, dh), f"{b}/attn/{q}/bias": bias.reshape(nh, dh)}
            out |= {
                f"{b}/attn/out/kernel": s[f"{p}.self_attn.out_proj.weight"].T.reshape(nh, dh, d),
                f"{b}/attn/out/bias": s[f"{p}.self_attn.out_proj.bias"],
                f"{b}/ln_2/scale": s[f"{p}.norm2.weight"], f"{b}/ln_2/bias": s[f"{p}.norm2.bias"],
                f"{b}/ffn_0/kernel": s[f"{p}.linear1.weight"].T, f"{b}/ffn_0/bias": s[f"{p}.linear1.bias"],
                f"{b}/ffn_1/kernel": s[f"{p}.linear2.weight"].T, f"{b}/ffn_1/bias": s[f"{p}.linear2.bias"],
            }  # fmt: skip
        out |= {"ln_f/scale": s["encoder.norm.weight"], "ln_f/bias": s["encoder.norm.bias"]}
    out |= {"dense_0/kernel": s["classifier.weight"].T, "dense_0/bias": s["classifier.bias"]}
    return {k: np.ascontiguousarray(out[k]) for k in spec.shapes()}


def load_weights(model: torch.nn.Module, spec, weights: dict[str, np.ndarray]) -> torch.nn.Module:
    """Copy canonical ``weights`` into ``model`` in place (layout conversion in the module
    docstring); returns ``model``."""
    if spec.kind in ("gru", "transformer"):  # every parameter named once: load_state_dict checks them all
        model.load_state_dict({k: torch.from_numpy(v) for k, v in state_dict(spec, weights).items()})
        return model
    with torch.no_grad():
        for layer, name in zip(_layers(model), spec.layer_names(), strict=True):
            kernel = weights[f"{name}/kernel"]
            if isinstance(layer, torch.nn.Conv2d):
                kernel = kernel.transpose(3, 2, 0, 1)
            else:
                if spec.kind == "cnn" and name == "dense_0":
                    h, w, c = _flat_rows(spec)
                    kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
                kernel = kernel.T
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel)))
            layer.bias.copy_(torch.from_numpy(weights[f"{name}/bias"]))
    return model


def make_optimizer(config, model: torch.nn.Module) -> torch.optim.Optimizer:
    """``torch.optim`` optimizer for ``config.optimizer`` over ``model``'s parameters (definitions
    in the module docstring)."""
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, betas=ADAM_BETAS, eps=ADAM_EPS)
    momentum = config.momentum if config.optimizer == "momentum" else 0.0
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=momentum)


def make_train_step(model, optimizer):
    """The training step ``(x, y, idx) -> loss`` (the loss before the update, not synchronized):
    a closure over the forward (``model``: the module, or its forward under autocast) and the
    optimizer, the form ``torch.compile`` tutorials use."""

    def train_step(x, y, idx):
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        optimizer.step()
        return loss.detach()

    return train_step


def _autocast_bf16(model: torch.nn.Module, device: torch.device):
    """``model``'s forward in bfloat16 autocast, returning float32 logits."""

    def logits(x):
        with torch.autocast(device.type, torch.bfloat16):
            return model(x).float()

    return logits


def versions() -> dict[str, str]:
    """Versions of PyTorch and the CUDA / cuDNN it was built with ("" where none)."""
    return {"torch": torch.__version__, "cuda": torch.version.cuda or "", "cudnn": str(torch.backends.cudnn.version() or "")}


def list_devices() -> list[str]:
    """Devices PyTorch can use here, e.g. ``["cpu", "cuda:0 (NVIDIA H100 80GB HBM3)"]``."""
    out = ["cpu"]
    out += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        out.append("mps")
    return out


class Trainer:
    """PyTorch implementation of ``frameworks.contract.TrainerProtocol``."""

    name = "torch"
    capabilities = frozenset({"device_memory", "device_matmul"})

    def __init__(self, spec, weights, config, x_train, y_train):
        self.spec, self.config = spec, config
        self._select_device()
        self._build(weights)
        self._place_data(x_train, y_train)
        self._compile()

    def _select_device(self):
        self.dev = select_device(self.config.device)
        self.device = str(self.dev)
        self.device_kind = "gpu" if self.dev.type in ("cuda", "mps") else "cpu"
        self.device_name = torch.cuda.get_device_name(self.dev) if self.dev.type == "cuda" else self.dev.type

    def _build(self, weights):
        self.model = load_weights(build_model(self.spec, self.config), self.spec, weights).to(self.dev)
        self.optimizer = make_optimizer(self.config, self.model)
        self.model.train()

    def _place_data(self, x_train, y_train):
        self.x = self._inputs(x_train)
        self.y = torch.as_tensor(y_train, device=self.dev)

    def _compile(self):
        # fp32 calls the module itself; bf16 runs its forward under autocast and hands the loss
        # float32 logits. Nothing else sits in the step: every microsecond here is per step.
        self._logits = _autocast_bf16(self.model, self.dev) if self.config.precision == "bf16" else self.model
        compiled = self.config.mode == "compiled"
        step = make_train_step(self._logits, self.optimizer)
        self._step = torch.compile(step) if compiled else step
        self._forward = torch.compile(self._logits) if compiled else self._logits

    def _inputs(self, x: np.ndarray) -> torch.Tensor:
        t = torch.as_tensor(x, device=self.dev)
        return t.permute(0, 3, 1, 2).contiguous() if t.ndim == 4 else t  # NHWC -> NCHW

    def indices(self, rows):
        # One tensor for all the rows, as a hand-written loop converts its batch order: from_numpy
        # shares the memory on a CPU, one copy to an accelerator. Steps get row views.
        t = torch.from_numpy(rows)
        return t if self.dev.type == "cpu" else t.to(self.dev)

    def train_step(self, idx):
        return self._step(self.x, self.y, idx)

    def losses(self, handles):
        return torch.stack(handles).double().cpu().numpy()

    @torch.inference_mode()
    def logits(self, x):
        self.model.eval()
        try:
            return batched(lambda xb: self._forward(self._inputs(xb)).cpu().numpy(), x)
        finally:
            self.model.train()  # back to training mode here, so train_step never checks

    def peak_device_mb(self):
        if self.dev.type == "cuda":
            return torch.cuda.max_memory_allocated(self.dev) / 2**20
        return None

    def matmul(self):
        if self.dev.type != "cuda":
            return None
        a = torch.randn(4096, 4096, device=self.dev)
        return (lambda: a @ a), (lambda r: torch.cuda.synchronize(self.dev)), 4096, "torch float32"

    def weights(self):
        if self.spec.kind in ("gru", "transformer"):
            return canonical_weights(self.spec, {k: v.detach().cpu().numpy() for k, v in self.model.state_dict().items()})
        out = {}
        for layer, name in zip(_layers(self.model), self.spec.layer_names(), strict=True):
            k = layer.weight.detach().cpu().numpy()
            if k.ndim == 4:
                k = k.transpose(2, 3, 1, 0)
            else:
                k = k.T
                if self.spec.kind == "cnn" and name == "dense_0":
                    h, w, c = _flat_rows(self.spec)
                    k = k.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(h * w * c, -1)
            out[f"{name}/kernel"] = np.ascontiguousarray(k)
            out[f"{name}/bias"] = layer.bias.detach().cpu().numpy()
        return out
