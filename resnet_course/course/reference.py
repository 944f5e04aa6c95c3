"""The reference solution of the ResNet50 assignment: the one place it lives.

The bodies of these three functions are what the source notebook's solution cells
contain (between ``### BEGIN SOLUTION`` and ``### END SOLUTION``); the test suite
fails when the notebook drifts from this file.  Nothing learner-facing imports it.
"""
from keras.initializers import glorot_uniform, random_uniform
from keras.layers import (
    Activation,
    Add,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Flatten,
    Input,
    MaxPooling2D,
    ZeroPadding2D,
)
from keras.models import Model


def identity_block(X, f, filters, training=True, initializer=random_uniform):
    """Residual block whose shortcut is the input itself (input and output shapes match).

    Arguments:
    X -- input tensor of shape (m, n_H_prev, n_W_prev, n_C_prev)
    f -- integer, size of the middle CONV's window
    filters -- list of 3 integers, the number of filters of the three CONV layers
    training -- True: BatchNorm uses batch statistics; False: its moving statistics;
                None: whatever mode the enclosing model is called in
    initializer -- initializer class for the CONV kernels, instantiated with seed=0

    Returns:
    X -- output tensor of shape (m, n_H_prev, n_W_prev, F3)
    """
    F1, F2, F3 = filters
    X_shortcut = X

    # Main path (each Conv2D with kernel_initializer=initializer(seed=0); each BatchNormalization
    # with axis=3, called with training=training):
    # First component (about 3 lines): 1x1 Conv2D with F1 filters, "valid" -> BatchNorm -> ReLU
    # Second component (about 3 lines): fxf Conv2D with F2 filters, "same" -> BatchNorm -> ReLU
    # Third component (about 2 lines): 1x1 Conv2D with F3 filters, "valid" -> BatchNorm (no ReLU)
    # Final step (about 2 lines): Add() of X_shortcut and X, then a ReLU
    # Shapes, e.g. X (m, 15, 15, 256) with filters [64, 64, 256]: (m, 15, 15, 64) after the first
    # component, (m, 15, 15, 64) after the second, (m, 15, 15, 256) after the third and at the end.
    ### BEGIN SOLUTION
    # First component: 1x1 CONV that narrows the channels.
    X = Conv2D(filters=F1, kernel_size=1, strides=(1, 1), padding="valid",
               kernel_initializer=initializer(seed=0))(X)
    X = BatchNormalization(axis=3)(X, training=training)
    X = Activation("relu")(X)

    # Second component: fxf CONV, "same" padding keeps height and width.
    X = Conv2D(filters=F2, kernel_size=f, strides=(1, 1), padding="same",
               kernel_initializer=initializer(seed=0))(X)
    X = BatchNormalization(axis=3)(X, training=training)
    X = Activation("relu")(X)

    # Third component: 1x1 CONV that widens back to F3 channels; no ReLU before the add.
    X = Conv2D(filters=F3, kernel_size=1, strides=(1, 1), padding="valid",
               kernel_initializer=initializer(seed=0))(X)
    X = BatchNormalization(axis=3)(X, training=training)

    # The skip connection, then the ReLU that follows the addition.
    X = Add()([X_shortcut, X])
    X = Activation("relu")(X)
    ### END SOLUTION

    return X


def convolutional_block(X, f, filters, s=2, training=True, initializer=glorot_uniform):
    """Residual block whose shortcut is a 1x1 CONV (projection): it may change shape.

    Arguments:
    X -- input tensor of shape (m, n_H_prev, n_W_prev, n_C_prev)
    f -- integer, size of the middle CONV's window
    filters -- list of 3 integers, the number of filters of the three CONV layers
    s -- integer, stride of the first CONV and of the shortcut CONV
    training -- True: BatchNorm uses batch statistics; False: its moving statistics;
                None: whatever mode the enclosing model is called in
    initializer -- initializer class for the CONV kernels, instantiated with seed=0

    Returns:
    X -- output tensor of shape (m, n_H, n_W, F3), n_H = ceil(n_H_prev / s)
    """
    F1, F2, F3 = filters
    X_shortcut = X

    # Each Conv2D with kernel_initializer=initializer(seed=0); each BatchNormalization with axis=3,
    # called with training=training:
    # First component (about 3 lines): 1x1 Conv2D, F1 filters, stride (s, s) -> BatchNorm -> ReLU
    # Second component (about 3 lines): fxf Conv2D with F2 filters, "same" -> BatchNorm -> ReLU
    # Third component (about 2 lines): 1x1 Conv2D with F3 filters, "valid" -> BatchNorm (no ReLU)
    # Shortcut path (about 2 lines): 1x1 Conv2D, F3 filters, stride (s, s) on X_shortcut -> BatchNorm
    # Final step (about 2 lines): Add() of the main path and the shortcut, then a ReLU
    # Shapes, e.g. X (m, 15, 15, 256) with filters [128, 128, 512] and s=2: (m, 8, 8, 128) after the
    # first component and the second, (m, 8, 8, 512) after the third, the shortcut and at the end.
    ### BEGIN SOLUTION
    # Main path. First component: 1x1 CONV with stride s, which does the downsampling.
    X = Conv2D(filters=F1, kernel_size=1, strides=(s, s), padding="valid",
               kernel_initializer=initializer(seed=0))(X)
    X = BatchNormalization(axis=3)(X, training=training)
    X = Activation("relu")(X)

    # Second component: fxf CONV, "same" padding.
    X = Conv2D(filters=F2, kernel_size=f, strides=(1, 1), padding="same",
               kernel_initializer=initializer(seed=0))(X)
    X = BatchNormalization(axis=3)(X, training=training)
    X = Activation("relu")(X)

    # Third component: 1x1 CONV to F3 channels; no ReLU before the add.
    X = Conv2D(filters=F3, kernel_size=1, strides=(1, 1), padding="valid",
               kernel_initializer=initializer(seed=0))(X)
    X = BatchNormalization(axis=3)(X, training=training)

    # Shortcut path: a 1x1 CONV with the same stride projects the input to the new shape.
    X_shortcut = Conv2D(filters=F3, kernel_size=1, strides=(s, s), padding="valid",
                        kernel_initializer=initializer(seed=0))(X_shortcut)
    X_shortcut = BatchNormalization(axis=3)(X_shortcut, training=training)

    # The skip connection, then the ReLU that follows the addition.
    X = Add()([X, X_shortcut])
    X = Activation("relu")(X)
    ### END SOLUTION

    return X


def ResNet50(input_shape=(64, 64, 3), classes=6):
    """The ResNet50 of the assignment:
    ZEROPAD -> CONV2D -> BATCHNORM -> RELU -> MAXPOOL -> CONVBLOCK -> IDBLOCK*2
    -> CONVBLOCK -> IDBLOCK*3 -> CONVBLOCK -> IDBLOCK*5 -> CONVBLOCK -> IDBLOCK*2
    -> AVGPOOL -> FLATTEN -> DENSE (softmax)

    The blocks are called with training=None so that every BatchNormalization
    follows the mode the model runs in: batch statistics in fit(), moving
    statistics in predict() and evaluate().

    Arguments:
    input_shape -- shape of the images of the dataset
    classes -- integer, number of classes

    Returns:
    model -- a keras.Model
    """
    X_input = Input(input_shape)

    # Stage 1
    X = ZeroPadding2D((3, 3))(X_input)
    X = Conv2D(64, (7, 7), strides=(2, 2), kernel_initializer=glorot_uniform(seed=0))(X)
    X = BatchNormalization(axis=3)(X)
    X = Activation("relu")(X)
    X = MaxPooling2D((3, 3), strides=(2, 2))(X)

    # Stage 2
    X = convolutional_block(X, f=3, filters=[64, 64, 256], s=1, training=None)
    X = identity_block(X, 3, [64, 64, 256], training=None)
    X = identity_block(X, 3, [64, 64, 256], training=None)

    # Every block with f=3 and training=None; an identity block outputs the channels it receives:
    # Stage 3 (about 4 lines): convolutional block, filters [128, 128, 512], s=2; 3 identity blocks
    # Stage 4 (about 6 lines): convolutional block, filters [256, 256, 1024], s=2; 5 identity blocks
    # Stage 5 (about 3 lines): convolutional block, filters [512, 512, 2048], s=2; 2 identity blocks
    # Output layers (about 3 lines): AveragePooling2D (2, 2) -> Flatten -> Dense with classes units,
    # softmax and kernel_initializer=glorot_uniform(seed=0)
    # Shapes for 64x64 images: (m, 15, 15, 256) after stage 2, (m, 8, 8, 512) after stage 3,
    # (m, 4, 4, 1024) after stage 4, (m, 2, 2, 2048) after stage 5, (m, classes) at the end.
    ### BEGIN SOLUTION
    # Stage 3
    X = convolutional_block(X, f=3, filters=[128, 128, 512], s=2, training=None)
    X = identity_block(X, 3, [128, 128, 512], training=None)
    X = identity_block(X, 3, [128, 128, 512], training=None)
    X = identity_block(X, 3, [128, 128, 512], training=None)

    # Stage 4
    X = convolutional_block(X, f=3, filters=[256, 256, 1024], s=2, training=None)
    X = identity_block(X, 3, [256, 256, 1024], training=None)
    X = identity_block(X, 3, [256, 256, 1024], training=None)
    X = identity_block(X, 3, [256, 256, 1024], training=None)
    X = identity_block(X, 3, [256, 256, 1024], training=None)
    X = identity_block(X, 3, [256, 256, 1024], training=None)

    # Stage 5
    X = convolutional_block(X, f=3, filters=[512, 512, 2048], s=2, training=None)
    X = identity_block(X, 3, [512, 512, 2048], training=None)
    X = identity_block(X, 3, [512, 512, 2048], training=None)

    # Average pooling over the final 2x2 map, then the classifier.
    X = AveragePooling2D((2, 2))(X)
    X = Flatten()(X)
    X = Dense(classes, activation="softmax", kernel_initializer=glorot_uniform(seed=0))(X)
    ### END SOLUTION

    model = Model(inputs=X_input, outputs=X)
    return model
