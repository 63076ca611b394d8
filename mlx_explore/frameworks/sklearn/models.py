"""The models in scikit-learn: ``MLPClassifier``, trained batch by batch with ``partial_fit``, and
``HistGradientBoostingClassifier`` for gradient-boosted trees.

``hidden_layer_sizes=()`` makes it softmax (multinomial logistic) regression, trained by the same
SGD/Adam as the MLP. (``SGDClassifier`` would be one-vs-rest, and ``LogisticRegression`` fits the
whole data set at once: neither is the same model or the same training.) ``alpha=0`` turns off the
L2 penalty the other frameworks do not have. The solver (``sgd``/``adam``, learning rate, momentum)
is set by the trainer, as the optimizer is beside the model in the other frameworks.
scikit-learn has no convolutional layers, so there is no CNN.

``gbdt`` is scikit-learn's histogram gradient boosting (LightGBM's algorithm, Ke et al., 2017),
set like the XGBoost and LightGBM columns: which settings are held equal, and which cannot be, is
``frameworks/common.py``, "Gradient-boosted trees". Its threads are not a parameter: the OpenMP pool
is limited with ``threadpoolctl`` (``trainer.configure``).
"""

from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.neural_network import MLPClassifier

ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic"}

# The code of each model kind (logreg is the MLP with no hidden layer).
MODEL_CODE = {"logreg": "mlp", "mlp": "mlp", "gbdt": "gbdt"}


def mlp(hidden, activation="relu"):
    """An ``MLPClassifier`` with ``hidden`` widths and one activation, without L2 penalty."""
    return MLPClassifier(
        hidden_layer_sizes=tuple(hidden),
        activation=ACTIVATIONS[activation],
        alpha=0.0,
    )


def gbdt(rounds=100, lr=0.1, max_depth=6, seed=0):
    """Gradient-boosted trees: ``rounds`` rounds (one tree per class, one on a binary task) of
    depth at most ``max_depth``, shrinkage ``lr``."""
    return HistGradientBoostingClassifier(
        max_iter=rounds,
        learning_rate=lr,
        max_depth=max_depth,  # best-first growth within the depth
        max_leaf_nodes=None,  # no leaf limit (the default is 31), as in XGBoost
        max_bins=255,
        l2_regularization=1.0,  # XGBoost's default lambda (scikit-learn's is 0)
        min_samples_leaf=20,  # the default: a count
        random_state=seed,
        # threads: not a parameter; its OpenMP pool is limited with threadpoolctl
        early_stopping=False,
    )
