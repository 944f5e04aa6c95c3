"""Grading the course's submissions: one sandboxed, cheat-proof grading step per submission.

`submission.grade_submission` (notebook bytes in, SubmissionResult out) is the pure per-submission
step; `sandbox` runs it in bubblewrap with limits; `runner` is the stand-alone script that runs the
checks inside the sandbox in a fresh interpreter.
"""
