"""The models in PyTorch: ``torch.nn.Module`` subclasses built from ``nn.Sequential`` and
PyTorch's own recurrent and transformer layers (``nn.GRU``, ``nn.TransformerEncoder``).

Inputs: ``(N, F)`` features, NCHW images for the CNN (PyTorch's native layout), ``(N, T, D)``
sequences for the GRU and the transformer (``batch_first=True``). Outputs are logits; the loss
(``nn.functional.cross_entropy``) applies log-softmax itself.
"""

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}

# The code of each model kind (logreg is the MLP with no hidden layer).
MODEL_CODE = {"logreg": "MLP", "mlp": "MLP", "cnn": "CNN", "gru": "GRU", "transformer": "Transformer"}


class MLP(nn.Module):
    """Dense layers of widths ``hidden`` with one activation, then a linear layer to the logits.
    ``hidden=()`` is softmax (multinomial logistic) regression."""

    def __init__(self, n_features, hidden, n_classes, activation="relu"):
        super().__init__()
        layers, width = [], n_features
        for h in hidden:
            layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
            width = h
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class CNN(nn.Module):
    """LeNet-style: two conv(3x3, same)-ReLU-maxpool(2) blocks, a hidden dense layer, the logits."""

    def __init__(self, in_channels, height, width, n_classes, channels=(32, 64), kernel_size=3, dense=128):
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, kernel_size, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
        )  # fmt: skip
        self.classifier = nn.Sequential(
            nn.Linear(c2 * (height // 4) * (width // 4), dense), nn.ReLU(),
            nn.Linear(dense, n_classes),
        )  # fmt: skip

    def forward(self, x):
        return self.classifier(self.features(x))


class GRU(nn.Module):
    """One GRU layer over the ``T`` steps of ``(N, T, D)`` inputs (zero initial state), then a linear
    layer from the last hidden state to the logits. ``nn.GRU`` is the "reset after" GRU of cuDNN,
    gates in the order r, z, n, with input-side and hidden-side biases."""

    def __init__(self, n_inputs, hidden, n_classes):
        super().__init__()
        self.gru = nn.GRU(n_inputs, hidden, batch_first=True)
        self.classifier = nn.Linear(hidden, n_classes)

    def forward(self, x):
        _, h_n = self.gru(x)  # h_n: (num_layers, N, hidden), the state after the last step
        return self.classifier(h_n[-1])


class Transformer(nn.Module):
    """A pre-norm transformer encoder over ``(N, T, D)`` inputs: a linear embedding plus learned
    positions, ``layers`` blocks of ``x + MHA(LN(x))`` and ``x + FFN(LN(x))`` (``norm_first=True``),
    a final layer norm, the mean over the ``T`` steps, then a linear layer to the logits."""

    def __init__(self, seq_len, n_inputs, d_model, n_classes, heads=2, layers=2, ffn_mult=4, eps=1e-5):
        super().__init__()
        self.embed = nn.Linear(n_inputs, d_model)
        self.pos_embedding = nn.Parameter(0.02 * torch.randn(seq_len, d_model))
        block = nn.TransformerEncoderLayer(
            d_model, heads, dim_feedforward=ffn_mult * d_model, dropout=0.0, activation="relu",
            layer_norm_eps=eps, batch_first=True, norm_first=True,
        )  # fmt: skip
        self.encoder = nn.TransformerEncoder(block, layers, norm=nn.LayerNorm(d_model, eps=eps), enable_nested_tensor=False)
        self.classifier = nn.Linear(d_model, n_classes)

    def forward(self, x):
        h = self.encoder(self.embed(x) + self.pos_embedding)
        return self.classifier(h.mean(dim=1))
