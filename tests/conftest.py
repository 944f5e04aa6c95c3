"""Shared test set-up: TensorFlow starts as the project's entry points start it (oneDNN kernels
on, quiet). The package and the learner modules import through the editable install."""
from resnet_course import tf_environment

tf_environment.apply_defaults()
