"""The practitioner's side: train.py and evaluate.py's engine, and the experiments built on it.

``trainer`` runs one training (configuration in ``train_config``, per-data-set defaults in
``recipes``, optimizer and learning rate in ``schedules``, tf.data in ``pipelines`` and
``augmentation``, checkpoints and resume in ``checkpoints``, metrics and plots in ``reporting``);
``inference`` loads a saved model and predicts; ``cli`` turns errors into one line; ``depth`` is
the plain-vs-residual experiment on CIFAR-10; ``perturbations`` the benchmarks' milder photo changes.
Imports the package root, ``learner``, ``models``, ``data`` and this folder; never ``course`` or
``grading``.
"""
