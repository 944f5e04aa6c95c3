"""Instructor- and practitioner-side code of the ResNet course kit.

Nothing in the learner release (ResNet50.ipynb and the learner modules, paths.LEARNER_MODULES)
imports this package; two of those modules are generated from it (learner_files.py).
"""
