"""xgboost adapter (``model="gbdt"`` only): ``models.py`` (the ``XGBClassifier`` as its users write it)
and ``trainer.py`` (its ``fit`` with a per-round callback, evaluation, devices)."""
