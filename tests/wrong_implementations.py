"""Plausible wrong solutions of the assignment, each paired with what the checks must say about it.

Every wrong solution is one visible argument away from the reference behaviour: `block` is a
residual block and `resnet50` a ResNet50, both parameterised by the mistake to make; with no
mistake they build what resnet_course/course/reference.py builds.

WRONG_IMPLEMENTATIONS lists (id, exercise, function, distinctive substring of the failure message);
EQUIVALENT_IMPLEMENTATIONS lists correct solutions written differently (id, exercise, function).
"""
import keras
from keras.initializers import glorot_uniform, random_uniform
from keras.layers import (
    Activation,
    Add,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Flatten,
    GlobalAveragePooling2D,
    Input,
    MaxPooling2D,
    ReLU,
    Softmax,
    ZeroPadding2D,
)
from keras.models import Model

from resnet_course.course import reference


def block(X, f, filters, s, training, initializer, *, projection,
          add_shortcut=True, shortcut_bn=True, relu_before_add=False, relu_after_add=True,
          middle_padding="same", stride_on_middle=False, bn_axis=3, forward_training=True,
          hard_training=None, kernel_initializer="called", seed=0, swap_f2_f3=False, shortcut_first=False,
          merge="Add", relu="Activation", kernel_as_tuple=False, pointwise_padding="valid", unapplied=None):
    """A residual block with optional mistakes; projection=True makes it a convolutional block.

    add_shortcut / shortcut_bn / relu_before_add / relu_after_add: which of those layers exist;
    middle_padding, stride_on_middle, bn_axis, swap_f2_f3: layer settings;
    forward_training=False calls BatchNormalization without training, hard_training fixes it;
    kernel_initializer: "called" (initializer(seed=seed)), "class" (the class itself) or "glorot";
    shortcut_first: the order of Add's inputs (either order is right);
    merge, relu, kernel_as_tuple, pointwise_padding: equivalent ways of writing the same block
    (see MERGES and RELUS; kernel_size=(f, f) instead of f; padding of the 1x1 CONVs);
    unapplied: a layer written but whose output is dropped (no `X =`): "second_bn", "add" or "relu_after_add".
    """
    F1, F2, F3 = filters
    if swap_f2_f3:
        F2, F3 = F3, F2
    X_shortcut = X

    def conv(Y, filters_, kernel, stride, padding=pointwise_padding):
        init = {"called": lambda: initializer(seed=seed), "class": lambda: initializer,
                "glorot": lambda: glorot_uniform(seed=0)}[kernel_initializer]()
        kernel = (kernel, kernel) if kernel_as_tuple else kernel
        return Conv2D(filters_, kernel, strides=(stride, stride), padding=padding, kernel_initializer=init)(Y)

    shared_relu = ReLU()

    def activation(Y):
        return RELUS[relu](shared_relu)(Y)

    def batch_norm(Y):
        layer = BatchNormalization(axis=bn_axis)
        if hard_training is not None:
            return layer(Y, training=hard_training)
        return layer(Y, training=training) if forward_training else layer(Y)

    first_stride, middle_stride = (1, s) if stride_on_middle else (s, 1)
    X = activation(batch_norm(conv(X, F1, 1, first_stride)))
    X = conv(X, F2, f, middle_stride, middle_padding)
    if unapplied == "second_bn":
        batch_norm(X)  # the learner's `BatchNormalization(axis=3)(X, training=training)` without `X =`
    else:
        X = batch_norm(X)
    X = activation(X)
    X = batch_norm(conv(X, F3, 1, 1))
    if relu_before_add:
        X = activation(X)
    if projection:
        X_shortcut = conv(X_shortcut, F3, 1, s)
        if shortcut_bn:
            X_shortcut = batch_norm(X_shortcut)
    if add_shortcut:
        added = MERGES[merge](*((X_shortcut, X) if shortcut_first else (X, X_shortcut)))
        X = X if unapplied == "add" else added
    if relu_after_add:
        activated = activation(X)
        X = X if unapplied == "relu_after_add" else activated
    return X


# Ways of adding the two paths, and of applying a ReLU, that compute the same thing.
MERGES = {
    "Add": lambda a, b: Add()([a, b]),
    "add_function": lambda a, b: keras.layers.add([a, b]),
    "operator": lambda a, b: a + b,
}
RELUS = {  # each takes the block's one shared ReLU() layer, which "reused" applies every time
    "Activation": lambda shared: Activation("relu"),
    "ReLU_layer": lambda shared: ReLU(),
    "activation_function": lambda shared: Activation(keras.activations.relu),
    "ops_relu": lambda shared: keras.ops.relu,
    "reused": lambda shared: shared,
}


def identity_block_variant(**mistake):
    """An identity_block with the learner's signature that makes the given mistake (or variation)."""
    def identity_block(X, f, filters, training=True, initializer=random_uniform):
        return block(X, f, filters, 1, training, initializer, **{"projection": False, **mistake})
    return identity_block


def convolutional_block_variant(**mistake):
    """A convolutional_block with the learner's signature that makes the given mistake (or variation)."""
    def convolutional_block(X, f, filters, s=2, training=True, initializer=glorot_uniform):
        return block(X, f, filters, s, training, initializer, **{"projection": True, **mistake})
    return convolutional_block


def identity_block_returning_none(X, f, filters, training=True, initializer=random_uniform):
    reference.identity_block(X, f, filters, training, initializer)  # forgot `return X`


# The course template's placeholders left in a draft (a learner's autosaved notebook): the lines the
# learner has not written yet still read `X = None`. The checks read them from the source.
def identity_block_with_placeholders(X, f, filters, training=True, initializer=random_uniform):
    F1, F2, F3 = filters
    X_shortcut = X
    X = Conv2D(filters=F1, kernel_size=1, strides=(1, 1), padding="valid", kernel_initializer=initializer(seed=0))(X)
    X = BatchNormalization(axis=3)(X, training=training)
    X = Activation("relu")(X)
    # Second component (about 3 lines)
    X = None
    X = None
    X = None
    # Third component (about 2 lines)
    X = None
    X = None
    # Final step (about 2 lines)
    X = None
    X = None
    return X


def convolutional_block_with_placeholders(X, f, filters, s=2, training=True, initializer=glorot_uniform):
    F1, F2, F3 = filters
    X_shortcut = X
    X = Conv2D(filters=F1, kernel_size=1, strides=(s, s), padding="valid", kernel_initializer=initializer(seed=0))(X)
    X = BatchNormalization(axis=3)(X, training=training)
    X = Activation("relu")(X)
    # Second and third components (about 5 lines)
    X = None
    X = None
    # Shortcut path (about 2 lines)
    X_shortcut = None
    X_shortcut = None
    # Final step
    X = Add()([X, X_shortcut])
    X = Activation("relu")(X)
    return X


identity_block_with_placeholders.__name__ = "identity_block"  # as the learner's cell names it
convolutional_block_with_placeholders.__name__ = "convolutional_block"


def identity_block_defaulting_to_inference(X, f, filters, training=False, initializer=random_uniform):
    return reference.identity_block(X, f, filters, training, initializer)


def resnet50_for_ten_classes(input_shape=(64, 64, 3), classes=10):
    return reference.ResNet50(input_shape, classes)


def resnet50(input_shape=(64, 64, 3), classes=6, *, stage_blocks=(3, 4, 6, 3),
             stage_filters=((64, 64, 256), (128, 128, 512), (256, 256, 1024), (512, 512, 2048)),
             stage_strides=(1, 2, 2, 2), block_training=None, zero_padding=True, max_pool=True,
             stem_bias=True, head="average", softmax=True, separate_softmax=None,
             identity_block=reference.identity_block, identity_filters=None, dropped_block=None):
    """The assignment's ResNet50 (reference blocks unless told otherwise) with optional mistakes.

    identity_filters: {stage number: filters} passed to that stage's identity blocks instead of the
    stage's filters; zero_padding="unapplied": ZeroPadding2D applied, then the Conv2D applied to the
    input; head="average_unapplied": AveragePooling2D((2, 2))(X) written without `X =`;
    dropped_block=(stage, k): that stage's k-th identity block called without `X =`.
    """
    X_input = Input(input_shape)
    X = ZeroPadding2D((3, 3))(X_input) if zero_padding else X_input
    conv_input = X_input if zero_padding == "unapplied" else X
    X = Conv2D(64, (7, 7), strides=(2, 2), use_bias=stem_bias, kernel_initializer=glorot_uniform(seed=0))(conv_input)
    X = BatchNormalization(axis=3)(X)
    X = Activation("relu")(X)
    if max_pool:
        X = MaxPooling2D((3, 3), strides=(2, 2))(X)
    # block_training="default" calls the blocks without training=..., i.e. with their default True.
    training = {} if block_training == "default" else {"training": block_training}
    for stage, (blocks, filters, s) in enumerate(zip(stage_blocks, stage_filters, stage_strides), start=2):
        X = reference.convolutional_block(X, f=3, filters=list(filters), s=s, **training)
        for k in range(1, blocks):
            if dropped_block == (stage, k):
                identity_block(X, 3, list(filters), **training)  # the learner's call without `X =`
                continue
            X = identity_block(X, 3, list((identity_filters or {}).get(stage, filters)), **training)
    if head == "average":
        X = Flatten()(AveragePooling2D((2, 2))(X))
    elif head == "average_unapplied":
        AveragePooling2D((2, 2))(X)  # the learner's line without `X =`
        X = Flatten()(X)
    elif head == "max":
        X = Flatten()(MaxPooling2D((2, 2))(X))
    elif head == "global":
        X = GlobalAveragePooling2D()(X)
    fused_softmax = softmax and separate_softmax is None
    X = Dense(classes, activation="softmax" if fused_softmax else None, kernel_initializer=glorot_uniform(seed=0))(X)
    if separate_softmax == "Activation":
        X = Activation("softmax")(X)
    elif separate_softmax == "Softmax":
        X = Softmax()(X)
    return Model(inputs=X_input, outputs=X)


def resnet50_variant(**mistake):
    """A ResNet50 with the learner's signature that makes the given mistake."""
    def ResNet50(input_shape=(64, 64, 3), classes=6):
        return resnet50(input_shape, classes, **mistake)
    return ResNet50


# Other ways of writing a correct solution: the checks must accept them.
EQUIVALENT_IMPLEMENTATIONS = [
    # The reference identity block adds [X_shortcut, X]; this one adds [X, X_shortcut].
    ("identity_add_order_swapped", "identity_block", identity_block_variant(shortcut_first=False)),
    ("convolutional_add_order_swapped", "convolutional_block", convolutional_block_variant(shortcut_first=True)),
    ("identity_bn_axis_minus_1", "identity_block", identity_block_variant(bn_axis=-1)),
    ("convolutional_bn_axis_minus_1", "convolutional_block", convolutional_block_variant(bn_axis=-1)),
    ("identity_kernel_size_tuple", "identity_block", identity_block_variant(kernel_as_tuple=True)),
    ("convolutional_kernel_size_tuple", "convolutional_block", convolutional_block_variant(kernel_as_tuple=True)),
    # A 1x1 kernel never needs padding: 'same' computes what 'valid' does, at any stride.
    ("identity_1x1_padding_same", "identity_block", identity_block_variant(pointwise_padding="same")),
    ("convolutional_1x1_padding_same", "convolutional_block",
     convolutional_block_variant(pointwise_padding="same")),
] + [(f"{exercise}_merge_{merge}", exercise, variant(merge=merge))
     for merge in MERGES if merge != "Add"
     for exercise, variant in (("identity_block", identity_block_variant),
                               ("convolutional_block", convolutional_block_variant))
] + [(f"{exercise}_relu_{relu}", exercise, variant(relu=relu))
     for relu in RELUS if relu != "Activation"
     for exercise, variant in (("identity_block", identity_block_variant),
                               ("convolutional_block", convolutional_block_variant))
] + [
    ("resnet50_separate_softmax_activation", "ResNet50", resnet50_variant(separate_softmax="Activation")),
    ("resnet50_softmax_layer", "ResNet50", resnet50_variant(separate_softmax="Softmax")),
    ("resnet50_blocks_with_other_equivalents", "ResNet50", resnet50_variant(
        identity_block=identity_block_variant(merge="operator", relu="ReLU_layer", pointwise_padding="same"))),
]

WRONG_IMPLEMENTATIONS = [
    # identity_block
    ("identity_no_shortcut", "identity_block", identity_block_variant(add_shortcut=False),
     "there is no Add: the shortcut is missing"),
    ("identity_relu_before_add", "identity_block", identity_block_variant(relu_before_add=True),
     "ReLU before the Add"),
    ("identity_no_relu_after_add", "identity_block", identity_block_variant(relu_after_add=False),
     "missing ReLU after the Add"),
    ("identity_valid_padding", "identity_block", identity_block_variant(middle_padding="valid"),
     "padding='valid', expected padding='same'"),
    ("identity_bn_axis_1", "identity_block", identity_block_variant(bn_axis=1),
     "axis=1, expected axis=3"),
    ("identity_training_not_forwarded", "identity_block", identity_block_variant(forward_training=False),
     "the `training` flag is ignored: main path layer 2 (BatchNormalization"),
    ("identity_training_hard_coded", "identity_block", identity_block_variant(hard_training=True),
     "is called with training=True although the block was called with training=False"),
    ("identity_glorot_hard_coded", "identity_block", identity_block_variant(kernel_initializer="glorot"),
     "was not created with the block's initializer (its kernel_initializer is GlorotUniform)"),
    ("identity_initializer_not_called", "identity_block", identity_block_variant(kernel_initializer="class"),
     "a Conv2D got kernel_initializer=initializer (the class itself)"),
    ("identity_initializer_without_seed", "identity_block", identity_block_variant(seed=None),
     "was created with initializer(seed=None)"),
    ("identity_projected_shortcut", "identity_block", identity_block_variant(projection=True),
     "the identity block adds X itself"),
    ("identity_f2_f3_swapped", "identity_block", identity_block_variant(swap_f2_f3=True),
     "main path layer 4 (Conv2D, named"),
    ("identity_returns_none", "identity_block", identity_block_returning_none,
     "returned None: end the function with `return X`"),
    # Layers written but whose output the next layer does not take (no `X =`).
    ("identity_add_not_applied", "identity_block", identity_block_variant(unapplied="add"),
     "Add is not applied: the next layer does not take its output"),
    ("identity_relu_after_add_not_applied", "identity_block", identity_block_variant(unapplied="relu_after_add"),
     "Activation('relu') after the Add is not applied: the block returns the Add's output"),
    ("identity_batch_norm_not_applied", "identity_block", identity_block_variant(unapplied="second_bn"),
     "BatchNormalization(axis=3) in main path is not applied: the next layer does not take its output"
     "; main path layer 5 (Activation('relu')) takes the tensor before it"),
    # convolutional_block
    ("convolutional_stride_on_middle_conv", "convolutional_block", convolutional_block_variant(stride_on_middle=True),
     "the stride s goes on the first 1x1 CONV"),
    ("convolutional_no_projection", "convolutional_block", convolutional_block_variant(projection=False),
     "Add's inputs do not include the projection"),
    ("convolutional_projection_without_bn", "convolutional_block", convolutional_block_variant(shortcut_bn=False),
     "missing BatchNormalization(axis=3) after shortcut path layer 1 (Conv2D)"),
    ("convolutional_f2_f3_swapped", "convolutional_block", convolutional_block_variant(swap_f2_f3=True),
     "filters=6, expected filters=4"),
    ("convolutional_training_not_forwarded", "convolutional_block", convolutional_block_variant(forward_training=False),
     "the `training` flag is ignored"),
    ("convolutional_relu_before_add", "convolutional_block", convolutional_block_variant(relu_before_add=True),
     "ReLU before the Add"),
    # ResNet50
    ("resnet50_stage4_four_identity_blocks", "ResNet50", resnet50_variant(stage_blocks=(3, 4, 5, 3)),
     "stage 4 has 4 identity blocks after its convolutional block, expected 5"),
    ("resnet50_wrong_stage3_filters", "ResNet50",
     resnet50_variant(stage_filters=((64, 64, 256), (128, 128, 256), (256, 256, 1024), (512, 512, 2048))),
     "stage 3, block 1 (convolutional block): filters=(128, 128, 256), expected filters=(128, 128, 512)"),
    ("resnet50_blocks_in_training_mode", "ResNet50", resnet50_variant(block_training="default"),
     "Leaving `training` out of a block call means training=True (the block's default)"),
    ("resnet50_blocks_with_training_true", "ResNet50", resnet50_variant(block_training=True),
     "BatchNormalization is hard-wired to training=True (stage 2, block 1"),
    # An identity block must output the channels it receives: Keras's Add raises on the others.
    ("resnet50_stage3_identity_filters_of_stage4", "ResNet50",
     resnet50_variant(identity_filters={3: (256, 256, 1024)}),
     "stage 3, block 2 (identity block) is called with filters [256, 256, 1024]: an identity block must "
     "output the channels it receives (512): its last filter count must be 512"),
    ("resnet50_stage5_identity_filters_of_stage4", "ResNet50",
     resnet50_variant(identity_filters={5: (256, 256, 1024)}),
     "stage 5, block 2 (identity block) is called with filters [256, 256, 1024]: an identity block must "
     "output the channels it receives (2048): its last filter count must be 2048"),
    ("resnet50_stage3_convolutional_filters_wrong", "ResNet50",
     resnet50_variant(stage_filters=((64, 64, 256), (128, 128, 256), (256, 256, 1024), (512, 512, 2048)),
                      identity_filters={3: (128, 128, 512)}),
     "stage 3, block 1 (convolutional block): filters=(128, 128, 256), expected filters=(128, 128, 512)\n"
     "  (this is why stage 3, block 2 (identity block) raised ValueError"),
    ("resnet50_average_pooling_not_applied", "ResNet50", resnet50_variant(head="average_unapplied"),
     "AveragePooling2D(pool_size=(2, 2), strides=(2, 2), padding='valid') in head (after stage 5) is not applied: "
     "the next layer does not take its output; head (after stage 5) layer 1 (Flatten) takes the tensor before it"),
    ("resnet50_zero_padding_not_applied", "ResNet50", resnet50_variant(zero_padding="unapplied"),
     "ZeroPadding2D(padding=((3, 3), (3, 3))) in stage 1 is not applied: the next layer does not take its "
     "output; stage 1 layer 1 (Conv2D) takes the tensor before it"),
    ("resnet50_no_max_pool", "ResNet50", resnet50_variant(max_pool=False),
     "missing MaxPooling2D(pool_size=(3, 3), strides=(2, 2), padding='valid') after stage 1 layer 4"),
    ("resnet50_no_zero_padding", "ResNet50", resnet50_variant(zero_padding=False),
     "missing ZeroPadding2D(padding=((3, 3), (3, 3))) before stage 1 layer 1 (Conv2D)"),
    ("resnet50_identity_blocks_without_relu", "ResNet50",
     resnet50_variant(identity_block=identity_block_variant(relu_after_add=False)),
     "stage 2, block 2 is not a valid residual block (Add of [Conv2D -> BatchNormalization -> "
     "Activation('relu') -> Conv2D -> BatchNormalization -> Activation('relu') -> Conv2D -> "
     "BatchNormalization | X] without a ReLU after it)"),
    ("resnet50_stem_conv_without_bias", "ResNet50", resnet50_variant(stem_bias=False),
     "): use_bias=False, expected use_bias=True"),
    ("resnet50_max_pool_head", "ResNet50", resnet50_variant(head="max"),
     "head (after stage 5) layer 1 is MaxPooling2D"),
    # Issue 29: a block call without `X =`, template placeholders left in, a default changed.
    ("resnet50_identity_block_not_applied", "ResNet50", resnet50_variant(dropped_block=(4, 3)),
     "an identity block called after stage 4, block 3 is not applied: its layers were built on X, but nothing "
     "takes its output, so the model skips it. Write `X = identity_block(X, ...)`"),
    ("identity_placeholders_left", "identity_block", identity_block_with_placeholders,
     "returned None: identity_block still holds 7 placeholder lines `... = None`"),
    ("convolutional_placeholders_left", "convolutional_block", convolutional_block_with_placeholders,
     "Hint: convolutional_block still holds 4 placeholder lines `... = None`"),
    ("identity_default_training_false", "identity_block", identity_block_defaulting_to_inference,
     "identity_block declares training=False; the template's is training=True"),
    ("resnet50_default_ten_classes", "ResNet50", resnet50_for_ten_classes,
     "ResNet50 declares classes=10; the template's is classes=6"),
    ("resnet50_global_pool_without_softmax", "ResNet50", resnet50_variant(head="global", softmax=False),
     "the output layer is Dense(units=6) with activation='linear': the output must be class probabilities"),
]

# Mistakes whose message rests on what exists only while the learner's function runs: the layers it built
# but did not apply (Keras records them on the tensors, not in the model's config) and the frames of a
# call that raised (the block's input and filters). A grader that replays a recorded model or error has
# neither and gives the general message for these: "missing ..." or the general hint about filters.
MESSAGES_FROM_THE_RUNNING_CODE = {
    "identity_add_not_applied", "identity_relu_after_add_not_applied", "identity_batch_norm_not_applied",
    "resnet50_stage3_identity_filters_of_stage4", "resnet50_stage5_identity_filters_of_stage4",
    "resnet50_stage3_convolutional_filters_wrong", "resnet50_average_pooling_not_applied",
    "resnet50_zero_padding_not_applied", "resnet50_identity_block_not_applied", "identity_placeholders_left",
    "convolutional_placeholders_left",
}
# Mistakes in the declared defaults: the notebook's checks read the function's signature; the grader's
# producer sends the models and errors of calls (every argument given), not the signature, so grading
# does not see these (yet).
DEFAULTS_SEEN_ONLY_IN_THE_NOTEBOOK = {"identity_default_training_false", "resnet50_default_ten_classes"}
