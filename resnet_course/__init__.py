"""Instructor- and practitioner-side code of the ResNet course kit, in folders by role.

    learner/    sources of the learner's modules (copied to the repository root; import nothing else here)
    models/     the ResNet family as a table, its builder and the fused layers
    data/       building and reading SIGNS and CIFAR-10
    training/   the trainer behind train.py / evaluate.py, and the depth experiment
    course/     the reference solution and every generated course file (release, bundle, figures)
    grading/    the sandboxed grader (producer in the sandbox, judge outside it; docs/GRADING.md)

Modules at this level (``paths``, ``atomic``, ``machine``) import nothing from the package, and
every folder may import them. Which folder may import which is in each folder's ``__init__``
and enforced by tests/test_layout.py. Nothing in the learner release imports this package.
"""
