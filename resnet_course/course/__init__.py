"""Authoring the assignment: the reference solution and everything generated from it.

``reference`` holds the solutions; ``notebook_sync`` writes them into the source notebook,
``expected_values`` the checks' expected values, ``learner_files`` the learner modules, ``release``
and ``bundle`` the learner release (with ``learner_bundle/``, its templates), ``figures`` the block
diagrams; ``generated`` lists every generated file with its source and checks that none is stale.
``demo`` executes the solution notebook, ``learner_lab`` opens the learner's JupyterLab.
Imports the package root, ``learner``, ``data``, this folder and the learner's root modules
(``resnet_checks``, ``check_cases``); never ``training`` or ``grading``.
"""
