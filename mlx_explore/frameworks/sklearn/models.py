"""The models in scikit-learn: ``MLPClassifier`` trained batch by batch with ``partial_fit``.

``hidden_layer_sizes=()`` makes it softmax (multinomial logistic) regression, trained by the same
SGD/Adam as the MLP. (``SGDClassifier`` would be one-vs-rest, and ``LogisticRegression`` fits the
whole data set at once: neither is the same model or the same training.) ``alpha=0`` turns off the
L2 penalty the other frameworks do not have; ``shuffle=False`` keeps the shared batch order.
scikit-learn has no convolutional layers, so there is no CNN.
"""

from sklearn.neural_network import MLPClassifier

ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic"}


def mlp(hidden, activation="relu", optimizer="sgd", lr=0.01, momentum=0.0, batch_size=32, seed=0):
    """An ``MLPClassifier`` with ``hidden`` widths; ``optimizer`` is ``sgd``, ``momentum`` or ``adam``."""
    return MLPClassifier(
        hidden_layer_sizes=tuple(hidden),
        activation=ACTIVATIONS[activation],
        solver="adam" if optimizer == "adam" else "sgd",
        alpha=0.0,
        batch_size=batch_size,
        learning_rate="constant",
        learning_rate_init=lr,
        momentum=momentum if optimizer == "momentum" else 0.0,
        nesterovs_momentum=False,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        shuffle=False,
        random_state=seed,
    )
