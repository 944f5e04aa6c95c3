"""Submissions that attack the judge's own time and memory (issue 27, item 3), for the robustness batch.

`judge_cases()` gives {student: (notebook bytes, Expected)} (Expected from tests/grading_batch_cases.py):

- "judge-lattice": an identity_block that returns a lattice of 83 Adds (each Add takes the two
  before it), within every size bound; the checks' old graph walk did about 2.4x more work per level
  and the batch never finished. It now gets its check's message (more than one merge layer) and
  ResNet50, which calls it, fails too; convolutional_block is right.
- "judge-hidden-lattice": the same lattice only for an input of 5 channels, which only a hidden case
  has: the public checks pass, and the hidden phase (which hung the old judge, telling the student
  something about a hidden argument) now says only "Failed the hidden tests.".
tests/test_grading_judge_bounds.py tests the judge alone on the same attacks.
"""
from tests import grading_submissions as submissions
from tests.grading_batch_cases import FULL, Expected

HIDDEN_FAILED = "Failed the hidden tests."
LEVELS = 83  # the lattice's Adds: within every size bound, and about 2.4^83 steps for the old walk

# The attack as a student writes it in the identity_block cell (Add and Activation are the notebook's imports).
LATTICE_SOURCE = f"""
def identity_block(X, f, filters, training=True, initializer=random_uniform):
    a, b = X, X
    for _ in range({LEVELS}):
        a, b = b, Add()([a, b])
    return Activation('relu')(b)
"""

# The variant that hangs the old judge only on a hidden argument (an input with 5 channels: the public
# cases have 3 and 4): its public checks pass, so only the hidden phase ever meets the lattice.
HIDDEN_LATTICE_SOURCE = f"""
_correct_identity_block = identity_block

def identity_block(X, f, filters, training=True, initializer=random_uniform):
    if X.shape[-1] != 5:
        return _correct_identity_block(X, f, filters, training=training, initializer=initializer)
    a, b = X, X
    for _ in range({LEVELS}):
        a, b = b, Add()([a, b])
    return Activation('relu')(b)
"""


def judge_cases():
    lattice = submissions.with_cell_source("identity_block", LATTICE_SOURCE)
    hidden = submissions.with_cell_source(
        "identity_block", submissions.reference_source("identity_block") + HIDDEN_LATTICE_SOURCE)
    return {
        "judge-lattice": (lattice, Expected(None, {**FULL, "identity_block_test": 0.0, "ResNet50_test": 0.0})),
        "judge-hidden-lattice": (hidden, Expected(None, {**FULL, "identity_block_test": 0.0},
                                                  message=HIDDEN_FAILED)),
    }
