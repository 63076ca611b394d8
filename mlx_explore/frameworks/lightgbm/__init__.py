"""lightgbm adapter (``model="gbdt"`` only): ``models.py`` (the ``LGBMClassifier`` as its users write it)
and ``trainer.py`` (its ``fit`` with per-round callbacks, evaluation, devices)."""
