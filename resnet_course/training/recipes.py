"""train.py's choices and each data set's default recipe: plain data, free of Keras, so
that train.py --help shows them without loading TensorFlow."""
DEFAULT_DATASET = "signs"
SCHEDULES = ("cosine", "onecycle", "step", "constant")
OPTIMIZERS = ("sgd", "adam")
# float32, or bfloat16 activations and float32 weights (Keras's "mixed_bfloat16" policy):
# 1.3-1.4x faster on a CPU with AVX512_BF16, same SIGNS accuracy over five seeds (README,
# "Measured results"); not the default because CPUs without bf16 units emulate it, slowly.
PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
# --distribute: one replica; tf.distribute.MirroredStrategy (the GPUs of this machine, or its
# CPU); tf.distribute.MultiWorkerMirroredStrategy (processes on one or several machines).
DISTRIBUTE = ("none", "mirrored", "multi-worker")
# Seconds a worker waits for the others (at start-up, then at every collective step) before
# taking one for lost. A worker that dies is noticed sooner, by TensorFlow's heartbeats (20-30 s
# here); this bounds the wait for one that is alive but silent, and must exceed the longest
# time one worker may spend alone: a first epoch's graph tracing, an epoch-end checkpoint, on a
# loaded machine (two workers on 2 cores under load 20 once took over 120 s).
WORKER_TIMEOUT = 600


# Defaults of the options the user leaves out: what every data set's recipe shares ...
SHARED_DEFAULTS = {
    "warmup_epochs": 1,
    "augment": True,
    "weight_decay": None,   # None: the model's own (models.build_model)
    "val_split": 0.0,       # 0: the per-epoch validation is the test split
    "seed": 0,
}
# ... and what each sets itself.
RECIPES = {
    # The notebook's recipe (bench/signs_generalization.md): Adam 1e-3, cosine with one warm-up
    # epoch, 22 epochs (its strong augmentation underfits in 12)
    "signs": {**SHARED_DEFAULTS, "model": "course_resnet50", "epochs": 22, "batch_size": 32,
              "lr": 1e-3, "optimizer": "adam", "schedule": "cosine"},
    # bench/cifar10.md's 10-minute recipe (84.0 % in bfloat16): He et al.'s SGD with
    # momentum 0.9 and batch 128, for a short budget: one-cycle to 0.2, weight decay 5e-4
    "cifar10": {**SHARED_DEFAULTS, "model": "resnet20", "epochs": 11, "batch_size": 128,
                "lr": 0.2, "optimizer": "sgd", "schedule": "onecycle", "weight_decay": 5e-4},
}
