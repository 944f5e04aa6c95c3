"""Where things are: the one place that names the project's folders and files.

Every module that needs the repository root, the data folder, a notebook or an output folder takes it
from here. Learner modules (resnets_utils.py, public_tests.py, ...) cannot import this package, so
they name their own defaults; tests check that those agree with these.
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The SIGNS-format data (built by `make data`) and the course's images.
DATASETS_DIR = ROOT / "datasets"
DATA_FILES = {"train": "train_signs.h5", "test": "test_signs.h5"}
IMAGES_DIR = ROOT / "images"
SAMPLE_PHOTO = IMAGES_DIR / "my_image.jpg"
CACHE_DIR = DATASETS_DIR / ".cache"
# The source archives of the data (read-only), when the repository sits beside ../shared.
SHARED_DATA_DIR = ROOT.parent / "shared" / "data"

# nbgrader's course folder and the assignment's notebooks.
COURSE_ID = "resnet-course"  # nbgrader_config.py and the grader's gradebook both use it
ASSIGNMENT = "ResNet50"
INSTRUCTOR_DIR = ROOT / "instructor"
SOURCE_DIR = INSTRUCTOR_DIR / "source" / ASSIGNMENT
SOURCE_NOTEBOOK = SOURCE_DIR / f"{ASSIGNMENT}.ipynb"
RELEASE_NOTEBOOK = ROOT / f"{ASSIGNMENT}.ipynb"

# The learner's modules: the release ships exactly these beside the notebook.
LEARNER_MODULES = ("resnets_utils.py", "training_utils.py", "public_tests.py", "resnet_checks.py",
                   "check_cases.py", "hand_framing.py", "stress.py", "tf_environment.py",
                   "display_utils.py")

# What the project writes.
OUTPUTS_DIR = ROOT / "outputs"
RELEASE_DIR = ROOT / "release"
BUNDLE_DIR = RELEASE_DIR / ASSIGNMENT
BUNDLE_ZIP = RELEASE_DIR / f"{ASSIGNMENT}.zip"
