"""keras adapter (``keras-jax``, ``keras-torch``, ``keras-tensorflow``): ``models.py`` (the Keras 3
model code, shared with the ``tensorflow`` column) and ``trainer.py`` (``model.compile`` +
``model.fit`` on the backend named by ``KERAS_BACKEND``, set by ``frameworks.trainer_module``)."""
