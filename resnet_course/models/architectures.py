"""The ResNet family's table: each variant's style, block kind, blocks per stage, widths.

Pure data, free of Keras, so that train.py can list the model names in --help without
loading TensorFlow.  ``resnet_course.models.resnet`` turns a row into a network; a style key
names one of its ``STYLES`` (stem, head, shortcut kind and layer conventions).
"""
from dataclasses import dataclass

BOTTLENECK_EXPANSION = 4  # a bottleneck block outputs 4x its width (ResNet-50/101/152)


@dataclass(frozen=True)
class Variant:
    style: str                  # a key of resnet_course.models.resnet.STYLES
    block: str                  # "basic" (two 3x3 convs) or "bottleneck" (1x1, 3x3, 1x1)
    blocks: tuple               # blocks per stage
    widths: tuple               # filters of each stage's 3x3 convs
    stem_width: int | None = None   # filters of the stem; None: the first stage's width

    def out_channels(self, width):
        return width * BOTTLENECK_EXPANSION if self.block == "bottleneck" else width


IMAGENET_WIDTHS = (64, 128, 256, 512)
CIFAR_WIDTHS = (16, 32, 64)

VARIANTS = {
    "resnet18": Variant("imagenet", "basic", (2, 2, 2, 2), IMAGENET_WIDTHS),
    "resnet34": Variant("imagenet", "basic", (3, 4, 6, 3), IMAGENET_WIDTHS),
    "resnet50": Variant("imagenet", "bottleneck", (3, 4, 6, 3), IMAGENET_WIDTHS),
    "resnet101": Variant("imagenet", "bottleneck", (3, 4, 23, 3), IMAGENET_WIDTHS),
    "resnet152": Variant("imagenet", "bottleneck", (3, 8, 36, 3), IMAGENET_WIDTHS),
    # depth 6n + 2
    "resnet20": Variant("cifar", "basic", (3, 3, 3), CIFAR_WIDTHS),
    "resnet32": Variant("cifar", "basic", (5, 5, 5), CIFAR_WIDTHS),
    "resnet44": Variant("cifar", "basic", (7, 7, 7), CIFAR_WIDTHS),
    "resnet56": Variant("cifar", "basic", (9, 9, 9), CIFAR_WIDTHS),
    "resnet110": Variant("cifar", "basic", (18, 18, 18), CIFAR_WIDTHS),
    # prep conv 64; stages 128 (+1 block), 256, 512 (+1 block): 8 convs + the dense
    "resnet9": Variant("resnet9", "basic", (1, 0, 1), (128, 256, 512), stem_width=64),
    "course_resnet50": Variant("course", "bottleneck", (3, 4, 6, 3), IMAGENET_WIDTHS),
}


def plain_name(name):
    """The plain (no-shortcut) twin's name: resnet50 -> plain50, course_plain50."""
    return name.replace("resnet", "plain")


MODEL_NAMES = tuple(VARIANTS)
PLAIN_MODEL_NAMES = tuple(plain_name(name) for name in VARIANTS)


def resolve(name):
    """-> (variant key, is plain); ValueError listing the valid names otherwise."""
    if name in VARIANTS:
        return name, False
    if name in PLAIN_MODEL_NAMES:
        return MODEL_NAMES[PLAIN_MODEL_NAMES.index(name)], True
    raise ValueError(
        f"Unknown model name {name!r}. Valid names: {', '.join(MODEL_NAMES)}; "
        f"plain (no shortcut) nets: {', '.join(PLAIN_MODEL_NAMES)}."
    )
