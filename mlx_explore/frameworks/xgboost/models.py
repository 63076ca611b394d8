"""Gradient-boosted trees in XGBoost: ``XGBClassifier``, its scikit-learn API, with the histogram
method (``tree_method="hist"``, Chen & Guestrin, 2016).

Set like the scikit-learn and LightGBM columns: which settings are held equal, and which cannot be,
is ``frameworks/common.py``, "Gradient-boosted trees". XGBoost grows trees depth-wise (its default
``grow_policy``) with no leaf limit (``max_leaves=0``); ``XGBClassifier`` picks the objective from
the labels: ``binary:logistic`` for two classes (one tree per round), ``multi:softprob`` otherwise
(one tree per class and round). The per-round evaluation metrics are the log-loss and the error rate.
"""

import xgboost as xgb

# The code of each model kind.
MODEL_CODE = {"gbdt": "gbdt"}


def gbdt(n_classes, rounds=100, lr=0.1, max_depth=6, threads=1, seed=0, device="cpu"):
    """Gradient-boosted trees: ``rounds`` rounds of trees of depth at most ``max_depth``, shrinkage
    ``lr``, on ``threads`` threads."""
    return xgb.XGBClassifier(
        n_estimators=rounds,
        learning_rate=lr,
        max_depth=max_depth,  # depth-wise growth (grow_policy="depthwise", the default)
        max_leaves=0,  # the default: no leaf limit
        max_bin=255,
        reg_lambda=1.0,  # the default
        min_child_weight=1.0,  # the default: a hessian sum, not a count
        random_state=seed,
        n_jobs=threads,
        tree_method="hist",
        device=device,
        eval_metric=["logloss", "error"] if n_classes == 2 else ["mlogloss", "merror"],
    )
