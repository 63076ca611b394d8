"""Gradient-boosted trees in LightGBM: ``LGBMClassifier``, its scikit-learn API (Ke et al., 2017).

Set like the scikit-learn and XGBoost columns: which settings are held equal, and which cannot be,
is ``frameworks/common.py``, "Gradient-boosted trees". LightGBM grows trees leaf-wise (best-first):
``num_leaves = 2 ** max_depth`` with ``max_depth`` lets it grow at most the full tree of that depth
the other two may grow, as its documentation advises for tuning with a depth
(https://lightgbm.readthedocs.io/en/latest/Parameters-Tuning.html). ``LGBMClassifier`` picks the
objective from the labels: ``binary`` for two classes (one tree per round), ``multiclass``
otherwise (one tree per class and round).
"""

import lightgbm as lgb

# The code of each model kind.
MODEL_CODE = {"gbdt": "gbdt"}

#: LightGBM's largest ``num_leaves`` (https://lightgbm.readthedocs.io/en/latest/Parameters.html).
MAX_LEAVES = 131072


def gbdt(rounds=100, lr=0.1, max_depth=6, threads=1, seed=0):
    """Gradient-boosted trees: ``rounds`` rounds of trees of depth at most ``max_depth``, shrinkage
    ``lr``, on ``threads`` threads."""
    return lgb.LGBMClassifier(
        n_estimators=rounds,
        learning_rate=lr,
        max_depth=max_depth,
        num_leaves=min(2**max_depth, MAX_LEAVES),  # leaf-wise growth, up to a full tree of max_depth
        max_bin=255,  # the default
        reg_lambda=1.0,  # XGBoost's default lambda (LightGBM's is 0)
        min_child_samples=20,  # the default: a count
        min_child_weight=1e-3,  # the default: a hessian sum
        random_state=seed,
        n_jobs=threads,
        verbose=-1,
    )
