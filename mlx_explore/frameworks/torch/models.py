"""The models in PyTorch: ``torch.nn.Module`` subclasses built from ``nn.Sequential``.

Inputs: ``(N, F)`` features, or NCHW images for the CNN (PyTorch's native layout). Outputs are
logits; the loss (``nn.functional.cross_entropy``) applies log-softmax itself.
"""

from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}

# The code of each model kind (logreg is the MLP with no hidden layer).
MODEL_CODE = {"logreg": "MLP", "mlp": "MLP", "cnn": "CNN"}


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
