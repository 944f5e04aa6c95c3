"""The sources of the learner's modules: what a learner reads, edits and runs beside the notebook.

`python -m resnet_course.course.learner_files` copies each module here to the repository root under
its learner name (signs_files -> resnets_utils.py, training -> training_utils.py, display ->
display_utils.py; hand_framing, stress and tf_environment keep theirs), renaming the imports
between them. A learner has no resnet_course, so these modules import only the standard library,
numpy, h5py, matplotlib, Pillow, TensorFlow/Keras and each other (``resnet_course.learner.*``),
and each copy stays under 200 lines. Everything else in the package may import them.
"""
