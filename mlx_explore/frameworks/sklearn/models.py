"""The models in scikit-learn: ``MLPClassifier``, trained batch by batch with ``partial_fit``.

``hidden_layer_sizes=()`` makes it softmax (multinomial logistic) regression, trained by the same
SGD/Adam as the MLP. (``SGDClassifier`` would be one-vs-rest, and ``LogisticRegression`` fits the
whole data set at once: neither is the same model or the same training.) ``alpha=0`` turns off the
L2 penalty the other frameworks do not have. The solver (``sgd``/``adam``, learning rate, momentum)
is set by the trainer, as the optimizer is beside the model in the other frameworks.
scikit-learn has no convolutional layers, so there is no CNN.
"""

from sklearn.neural_network import MLPClassifier

ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic"}

# The code of each model kind (logreg is the MLP with no hidden layer).
MODEL_CODE = {"logreg": "mlp", "mlp": "mlp"}


def mlp(hidden, activation="relu"):
    """An ``MLPClassifier`` with ``hidden`` widths and one activation, without L2 penalty."""
    return MLPClassifier(
        hidden_layer_sizes=tuple(hidden),
        activation=ACTIVATIONS[activation],
        alpha=0.0,
    )
