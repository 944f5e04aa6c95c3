"""Checks for the ResNet50 assignment: run them in the notebook after each exercise.

    identity_block_test(identity_block)
    convolutional_block_test(convolutional_block)
    ResNet50_test(ResNet50)

Each check builds your function on a symbolic input and reads the layers it created (their
types, settings, output shapes, and how the shortcut reaches the Add), then runs it on fixed
inputs with fixed kernels, in training and in inference mode, and compares the outputs with a
correct implementation's. ResNet50_test also checks the stages, the layers of every block, the
head, every layer's settings (initializers included), the parameter count, that a prediction does
not depend on the rest of the batch, and the outputs on two fixed images in both modes, with
weights the check sets in every layer.

The first problem found is shown as a short "Check failed" message: which exercise and case,
what is wrong, expected vs got, and a hint. When everything is right you see "All tests passed!".
The machinery lives in resnet_checks.py, the expected values in check_cases.py.
"""
from check_cases import CONVOLUTIONAL_BLOCK_CASES, IDENTITY_BLOCK_CASES, RESNET50_CASES
from resnet_checks import (GREEN, RESET, CheckFailed, check_convolutional_block, check_identity_block,
                           check_resnet50)

__all__ = ["identity_block_test", "convolutional_block_test", "ResNet50_test", "CheckFailed",
           "check_identity_block", "check_convolutional_block", "check_resnet50"]


def _run_cases(check, target, cases):
    for case in cases:
        check(target, case)
    print(f"{GREEN}All tests passed!{RESET}")


def identity_block_test(target):
    """Checks identity_block(X, f, filters, training, initializer) on the public cases."""
    _run_cases(check_identity_block, target, IDENTITY_BLOCK_CASES)


def convolutional_block_test(target):
    """Checks convolutional_block(X, f, filters, s, training, initializer) on the public cases."""
    _run_cases(check_convolutional_block, target, CONVOLUTIONAL_BLOCK_CASES)


def ResNet50_test(target):
    """Checks ResNet50(input_shape, classes) on the public case."""
    _run_cases(check_resnet50, target, RESNET50_CASES)
