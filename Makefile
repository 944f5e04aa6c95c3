# Set-up is part of every target: a fresh machine needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.requirements-installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup system-packages data demo test release lab grade expected figures generated check-generated clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	# The project itself, editable: resnet_course and the learner modules import from anywhere.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

# Debian packages the tests need: bubblewrap (the grader's sandbox) and chromium (the browser test).
# Installed only where missing (apt-get needs root, as on CI and the project's machines).
SYSTEM_PACKAGES := bwrap:bubblewrap chromium:chromium
system-packages:
	@missing=""; for entry in $(SYSTEM_PACKAGES); do \
	  command -v $${entry%%:*} >/dev/null 2>&1 || missing="$$missing $${entry#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# Builds datasets/{train,test}_signs.h5 and images/my_image.jpg; a no-op when they are up to date.
data: setup
	$(PY) -m resnet_course.data.signs_data

# Executes the solution notebook with real training; writes outputs/ResNet50.html and the model.
# Re-runs only when the notebook, the learner modules or the data changed since the last demo.
DEMO_INPUTS := instructor/source/ResNet50/ResNet50.ipynb resnets_utils.py training_utils.py public_tests.py \
               resnet_checks.py check_cases.py hand_framing.py stress.py tf_environment.py display_utils.py \
               datasets/train_signs.h5 datasets/test_signs.h5
# The results are printed once, by the last line, also when nothing had to run.
demo: data outputs/ResNet50.html
	@$(PY) -m resnet_course.course.demo --report

outputs/ResNet50.html: $(STAMP) $(DEMO_INPUTS)
	$(PY) -m resnet_course.course.demo --no-report

# check-generated first: a generated file edited by hand or left stale fails at once, with its name.
# One worker per core (pytest-xdist; tests/conftest.py deals the tests out, longest first); a test that
# fails is run once more alone, and fails the target if it fails again.
test: data system-packages check-generated
	$(PY) -m pytest -n auto --durations=15 || { \
	  echo "re-running the failed tests once, in one fresh worker (a known fault: in a long xdist worker, an in-process TensorFlow tracing can fail with ResourceExhaustedError; bench/test_suite.md)"; \
	  $(PY) -m pytest -n 1 --last-failed --last-failed-no-failures none; }

# The learner release: ResNet50.ipynb from the nbgrader source notebook, and the learner bundle
# release/ResNet50/ + release/ResNet50.zip (+ release/ResNet50-files.zip, for a notebook opened alone).
# BUNDLE_URL (the web folder learners download ResNet50-files.zip from), COLAB_REPOSITORY (owner/name
# on GitHub) or COLAB_URL, when given, replace c.ResNetCourse.* in instructor/nbgrader_config.py.
release: data
	$(PY) -m resnet_course.course.release $(call release_option,BUNDLE_URL,--bundle-url) \
	    $(call release_option,COLAB_REPOSITORY,--colab-repository) $(call release_option,COLAB_URL,--colab-url)
release_option = $(if $(filter undefined,$(origin $(1))),,$(2) "$($(1))")

# The learner's JupyterLab on release/ResNet50, without nbgrader's tools (make release rewrites that folder).
lab: setup
	$(PY) -m resnet_course.course.learner_lab

# Grades every submission in SUBMISSIONS (nbgrader's layout <folder>/<student>/ResNet50/ResNet50.ipynb),
# each in a bubblewrap sandbox, in parallel on Dask; writes instructor/gradebook.db and autograded/.
# Installs bubblewrap where it is missing (the grader itself stops with one line without it).
# GRADE_OPTIONS: the grader's options, e.g. GRADE_OPTIONS="--timeout 60 --workers 4" (see --help).
SUBMISSIONS ?= instructor/submitted
grade: setup
	@command -v bwrap >/dev/null 2>&1 || { echo "installing Debian package: bubblewrap"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; }
	$(PY) -m resnet_course.grading $(SUBMISSIONS) $(GRADE_OPTIONS)

# Regenerates the expected values in check_cases.py and the hidden tests' cases.
expected: setup
	$(PY) -m resnet_course.course.expected_values

# Redraws the block diagrams in images/.
figures: setup
	$(PY) -m resnet_course.course.figures

# Every generated file, in order (learner copies, expected values, solutions, release, figures);
# check-generated proves none is stale.
generated: data
	$(PY) -m resnet_course.course.generated

check-generated: data
	$(PY) -m resnet_course.course.generated --check

clean:
	rm -rf outputs runs release instructor/release datasets/*.h5 images/my_image.jpg

# The degradation experiment on CIFAR-10, plain-20/56 against ResNet-20/56 (bench/depth.md): writes
# images/depth_*.png and images/depth_results.json (~9 min on an idle 2-core AVX-512 CPU, ~23-28 on AVX2).
.PHONY: depth
depth: setup
	$(PY) -m resnet_course.training.depth $(DEPTH_OPTIONS)
