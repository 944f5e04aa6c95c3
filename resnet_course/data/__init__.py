"""Data sets: building the SIGNS-format files, reading SIGNS and CIFAR-10, splitting and sampling.

``signs_data`` builds datasets/*.h5 from the Sign Language Digits archive (checked against
``manifests/``), ``cifar10`` reads CIFAR-10 in its official or image-folder layout, ``datasets``
resolves a data-set name or path for the trainer, ``sampling`` draws stratified subsets.
Imports the package root, ``learner`` (the learner's loader is the one reader of SIGNS files) and
this folder.
"""
