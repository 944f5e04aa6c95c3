"""Instructor- and practitioner-side code of the ResNet course kit.

Nothing in the learner release (ResNet50.ipynb, resnets_utils.py, public_tests.py)
imports this package.
"""
