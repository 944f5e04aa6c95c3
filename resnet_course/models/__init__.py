"""The networks: the ResNet family as a table and the one builder that turns a row into a Keras model.

``architectures`` holds the variants as data (no Keras, so command lines list them without loading
TensorFlow); ``resnet`` builds them (``build_model``); ``fused`` holds the faster, numerically equivalent
layers and optimizers the trainer passes to the builder, and the custom layers a saved model may contain.
Imports only the package root (paths, atomic, machine) and this folder: no data, training or course code.
"""
