"""sklearn adapter: ``models.py`` (the model code) and ``trainer.py`` (training, evaluation, devices)."""
