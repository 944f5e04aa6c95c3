"""Grading the course's submissions: student code runs only in a sandbox, verdicts come only from a judge.

`submission.grade_submission` (notebook bytes in, SubmissionResult out) is the per-submission step;
`notebook` finds the student's cells, `sandbox` runs `producer` (a stand-alone script that runs those
cells with `kernel` and sends the Keras models the student's functions build, as data) in bubblewrap
with limits, and `judge` validates and rebuilds those models (in a child process of the worker's judge
host, with its own limits: `bounded`) and runs the course's checks on them. docs/GRADING.md states the trust model.
Imports the package root, ``learner`` and the learner's checks (``resnet_checks``, ``check_cases``);
``producer`` and ``kernel`` run inside the sandbox and import nothing of the package.
"""
