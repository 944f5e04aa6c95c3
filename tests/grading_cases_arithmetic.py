"""A ResNet50 without its arithmetic (issue 27, item 4): the course's layers, stages and parameter
count, but every kernel initialised to zeros, the 3x3 convolutions dilated (dilation_rate=2, which
keeps their output shapes), BatchNormalization with epsilon=1000 and constant moving statistics.
It outputs 1/6 for every image; a check that compares only the layer structure gives it full marks.

Made the way a student's config edit would be: the reference model's config, changed and rebuilt.
"""
import keras

from resnet_course.course import reference


def _without_arithmetic(config):
    for layer in config["layers"]:
        kind, settings = layer["class_name"], layer["config"]
        if kind in ("Conv2D", "Dense"):
            settings["kernel_initializer"] = {"module": "keras.initializers", "class_name": "Zeros",
                                              "config": {}, "registered_name": None}
        if kind == "Conv2D" and tuple(settings["kernel_size"]) == (3, 3) and tuple(settings["strides"]) == (1, 1):
            settings["dilation_rate"] = [2, 2]
        if kind == "BatchNormalization":
            settings["epsilon"] = 1000.0
            for name, value in (("moving_mean_initializer", 0.5), ("moving_variance_initializer", 2.0)):
                settings[name] = {"module": "keras.initializers", "class_name": "Constant",
                                  "config": {"value": value}, "registered_name": None}
    return config


def ResNet50(input_shape=(64, 64, 3), classes=6):
    """The reference ResNet50 rebuilt from its config with the arithmetic taken out (see above)."""
    model = reference.ResNet50(input_shape, classes)
    return keras.Model.from_config(_without_arithmetic(model.get_config()))


# As the learner's notebook cell: the same model, built with the Keras layers the notebook imports.
NOTEBOOK_SOURCE = '''def ResNet50(input_shape=(64, 64, 3), classes=6):
    import keras
    model = _reference_ResNet50(input_shape, classes)
    config = model.get_config()
    for layer in config["layers"]:
        kind, settings = layer["class_name"], layer["config"]
        if kind in ("Conv2D", "Dense"):
            settings["kernel_initializer"] = {"module": "keras.initializers", "class_name": "Zeros",
                                              "config": {}, "registered_name": None}
        if kind == "Conv2D" and tuple(settings["kernel_size"]) == (3, 3) and tuple(settings["strides"]) == (1, 1):
            settings["dilation_rate"] = [2, 2]
        if kind == "BatchNormalization":
            settings["epsilon"] = 1000.0
            for name, value in (("moving_mean_initializer", 0.5), ("moving_variance_initializer", 2.0)):
                settings[name] = {"module": "keras.initializers", "class_name": "Constant",
                                  "config": {"value": value}, "registered_name": None}
    return keras.Model.from_config(config)
'''


def arithmetic_cases():
    """{student: (notebook bytes, Expected)} for the robustness batch (tests/grading_batch_cases.py):
    the two blocks right, ResNet50 without its arithmetic, which must earn nothing."""
    from tests import grading_submissions as submissions
    from tests.grading_batch_cases import FULL, Expected

    source = (submissions.reference_source("ResNet50").replace("def ResNet50(", "def _reference_ResNet50(", 1)
              + "\n\n" + NOTEBOOK_SOURCE)
    return {"resnet50-without-arithmetic": (submissions.with_cell_source("ResNet50", source),
                                            Expected(None, {**FULL, "ResNet50_test": 0.0},
                                                     contains="kernel_initializer=Zeros(), expected kernel_initializer=GlorotUniform(seed=0)"))}
