"""Evaluate a saved Keras classifier on a data set, or predict the class of image files.

    python evaluate.py runs/r20/model.keras                      # its own data set's test split
    python evaluate.py runs/r20/model.keras --data cifar10 --json
    python evaluate.py outputs/resnet50_signs.keras --data datasets/test_signs.h5
    python evaluate.py outputs/resnet50_signs.keras images/my_image.jpg
    python evaluate.py outputs/resnet50_signs.keras photos/ 'more/*.jpg'   # folders, globs
    python evaluate.py outputs/resnet50_signs.keras --data signs --heldout   # + photos from another source

On data: accuracy, loss, per-class precision/recall/F1/support and the confusion matrix.
--heldout adds the same report on the held-out photos from another source (datasets/heldout_signs.h5,
built by make data; signs 1-5), with the source and licence the file records.
On images: the predicted class and every class probability (top 5 when there are more);
each image is turned upright, cut to a square (around the hand for SIGNS models, as the
notebook's load_my_image does; the centre square for others: --crop) and resized to the model's
input size.  Models from train.py take raw 0-255 pixels (input scaling inside); others
(e.g. saved in a notebook after fitting X / 255) get 0-1 pixels; --pixels overrides.
An IMAGE may be a folder (every file in it and its subfolders) or a glob ('photos/*.jpg',
'photos/**/*.png'); hidden files and folders are skipped, and each file that is not an image
is named in one line on stderr while the others are classified.
Without --data and images, the data set recorded in metrics.json next to the model is used.
The model file is a .keras file or a legacy HDF5 one (.h5, as Keras 2 saved), told by its
content, whatever its name.
"""
import glob
import json
import sys
from pathlib import Path

from resnet_course.learner import tf_environment
from resnet_course.training import cli

tf_environment.apply_defaults()  # before TensorFlow loads (oneDNN kernels on every x86 CPU)

PROG = "evaluate.py"
HELDOUT_DEFAULT = Path("datasets") / "heldout_signs.h5"  # relative to the current folder, as --data
TOP_K = 5         # classes listed per image when the model has more than MAX_LISTED
MAX_LISTED = 10


def build_parser():
    p = cli.OneLineParser(prog=PROG, description=__doc__,
                          formatter_class=cli.argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL",
                   help="a model saved by train.py or the notebook (.keras), or in the legacy "
                        "HDF5 format (.h5, .hdf5)")
    p.add_argument("images", nargs="*", metavar="IMAGE",
                   help="image files (JPEG, PNG, ...), folders of them or globs to classify "
                        "(default: none)")
    p.add_argument("--image", action="append", default=[], metavar="IMAGE",
                   help="an image file to classify; repeatable (default: none)")
    p.add_argument("--data", metavar="NAME|PATH",
                   help="signs, cifar10 (their test split), a SIGNS-format .h5 file (e.g. the "
                        "course's test_signs.h5), a SIGNS folder or a CIFAR-10 source (default: "
                        "the data set in metrics.json next to the model, when there are no images)")
    p.add_argument("--test-size", type=int, metavar="N",
                   help="evaluate on a stratified, seeded subset of N images (default: all)")
    p.add_argument("--seed", type=int, default=0, help="picks the --test-size subset (default: 0)")
    p.add_argument("--batch-size", type=int, default=64, metavar="N",
                   help="images per prediction batch (default: 64)")
    p.add_argument("--pixels", choices=("auto", "raw", "unit"), default="auto",
                   help="what the model takes: raw 0-255 or unit 0-1 pixels; auto: raw when it "
                        "has a Rescaling layer (default: auto)")
    p.add_argument("--mirror-average", action="store_true",
                   help="average each image's probabilities with those of its left-right mirror "
                        "image (test-time augmentation, for models trained with random flips, "
                        "as train.py's and the notebook's are) (default: off)")
    p.add_argument("--crop", choices=("auto", "hand", "centre"), default="auto",  # inference.CROPS
                   help="how an image file is cut to the model's square input: hand (a square "
                        "around the hand, found against the plain background), centre (the "
                        "largest centred square); auto: centre for CIFAR-10 models, hand for "
                        "others such as SIGNS models (default: auto)")
    p.add_argument("--heldout", nargs="?", const=str(HELDOUT_DEFAULT), default=None, metavar="FILE",
                   help="also evaluate on held-out photos from another source, reported with their "
                        "source and licence: a SIGNS-format .h5 file (default when given without "
                        "FILE: datasets/heldout_signs.h5, built by make data) (default: off)")
    p.add_argument("--json", action="store_true",
                   help="print one machine-readable JSON summary instead of the text report")
    return p


def run_info_next_to(model_path):
    """metrics.json written by train.py beside the model, or None (absent, or another kind)."""
    try:
        info = json.loads((Path(model_path).parent / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    ours = (isinstance(info, dict) and isinstance(info.get("config"), dict)
            and isinstance(info.get("dataset"), dict) and "class_names" in info["dataset"])
    return info if ours else None


def evaluate_data(model, spec, args, raw_pixels, log):
    from resnet_course.data import datasets
    from resnet_course.training import inference, reporting

    split = datasets.load_eval_split(spec, size=args.test_size, seed=args.seed)
    if inference.num_classes(model) != len(split.class_names):
        raise inference.ModelFileError(
            f"the model predicts {inference.num_classes(model)} classes but {split.name} has "
            f"{len(split.class_names)}; evaluate it on the data set it was trained for.")
    inference.check_images_fit(model, split.X, split.name)
    log(f"evaluating on {split.name}: {len(split.y)} images")
    probabilities = inference.predict_probabilities(model, split.X, args.batch_size, raw_pixels,
                                                    mirror_average=args.mirror_average)
    return {"name": split.name, **reporting.summarize(probabilities, split.y, split.class_names)}


def evaluate_heldout(model, path, args, raw_pixels, log):
    """The summary on the held-out photos of ``path`` (all of them), with the "source", "licence",
    "attribution" and "changes" its file records ("" for what it does not say)."""
    from resnet_course.data import datasets, heldout
    from resnet_course.learner import signs_files
    from resnet_course.training import inference, reporting

    path = Path(path)
    if not path.is_file():
        raise datasets.DatasetError(f"--heldout {path}: file not found; `make data` builds "
                                    f"datasets/heldout_signs.h5 from the Roboflow photos.")
    X, y, classes = signs_files.load_split(path, "test")
    about = heldout.info(path)
    class_names = datasets.signs_class_names(classes)
    if inference.num_classes(model) != len(class_names):
        raise inference.ModelFileError(
            f"the model predicts {inference.num_classes(model)} classes but {path} has "
            f"{len(class_names)}; evaluate it on the data set it was trained for.")
    inference.check_images_fit(model, X, str(path))
    log(f"evaluating on the held-out photos {path}: {len(y)} images")
    probabilities = inference.predict_probabilities(model, X, args.batch_size, raw_pixels,
                                                    mirror_average=args.mirror_average)
    summary = reporting.summarize(probabilities, y, class_names)
    return {"name": str(path), **{key: about.get(key, "") for key in
                                  ("source", "licence", "attribution", "changes")}, **summary}


def crop_for(crop, class_names):
    """The crop an image gets: ``crop`` unless "auto", which frames the hand unless the model
    predicts CIFAR-10's classes."""
    from resnet_course.data import cifar10

    if crop != "auto":
        return crop
    return "centre" if tuple(class_names) == tuple(cifar10.CLASS_NAMES) else "hand"


def warn(line):
    print(line, file=sys.stderr)


def is_hidden(path, below):
    """True when ``path`` or one of its folders below the folder ``below`` starts with a dot."""
    return any(part.startswith(".") for part in Path(path).relative_to(below).parts)


def expand_image_paths(given):
    """The files ``given`` names, in order: a file as it is, a folder as every file in it
    and its subfolders (sorted), a glob (``*``, ``?``, ``[...]``; ``**`` for any depth) as the
    files it matches (sorted). Hidden files and folders met in a folder or glob are skipped;
    one named on its own is read.
    Raises inference.ImageError for a folder without files, a glob matching none or a missing
    path (the message of the photo loader)."""
    from resnet_course.training import inference

    def files_in(folder):
        return sorted(p for p in folder.rglob("*") if p.is_file() and not is_hidden(p, folder))

    paths = []
    for item in map(str, given):
        path = Path(item)
        if path.is_dir():
            found = files_in(path)
            if not found:
                raise inference.ImageError(f"{path}: a folder with no image files in it.")
            paths += found
        elif not path.exists() and glob.has_magic(item):
            # what the shell would have given (glob, like it, skips dot files and folders):
            # the matches, a matched folder as its files
            matches = [Path(p) for p in sorted(glob.glob(item, recursive=True))]
            found = [f for m in matches for f in (files_in(m) if m.is_dir() else [m])]
            if not found:
                raise inference.ImageError(f"{item}: matches no file.")
            paths += found
        else:  # a file (hidden or not: named on purpose), or a missing one that load reports
            paths.append(path)
    return paths


def readable_images(paths, warn):
    """(the paths that are images, [{path, reason}] of the others): each file opened as the
    classifier will open it; ``warn`` gets one line per file that is not an image. A single
    path is passed through (classify_images reports it as the error it is); ImageError when
    none of several files is an image."""
    from resnet_course.learner.signs_files import load_photo
    from resnet_course.training import inference

    if len(paths) <= 1:
        return list(paths), []
    readable, skipped = [], []
    for path in paths:
        try:
            load_photo(path)
            readable.append(path)
        except inference.ImageError as err:
            skipped.append({"path": str(path), "reason": str(err)})
            warn(f"{PROG}: skipped: {err}")
    if not readable:
        raise inference.ImageError(f"none of the {len(paths)} files is an image Pillow can "
                                   f"read (each named above).")
    return readable, skipped


def classify_images(model, paths, class_names, raw_pixels, mirror_average=False, crop="hand"):
    import numpy as np

    from resnet_course.training import inference

    images = np.concatenate([inference.load_image_for(model, p, crop) for p in paths])
    probabilities = inference.predict_probabilities(model, images, raw_pixels=raw_pixels,
                                                    mirror_average=mirror_average)
    results = []
    for path, p in zip(paths, probabilities):
        order = np.argsort(-p)[:len(p) if len(p) <= MAX_LISTED else TOP_K]
        results.append({"path": str(path), "predicted": class_names[order[0]],
                        "probability": float(p[order[0]]),
                        "probabilities": {class_names[i]: float(p[i]) for i in order}})
    return results


def format_images(results):
    lines = []
    for r in results:
        top = ", ".join(f"{name} {prob:.3f}" for name, prob in r["probabilities"].items())
        lines.append(f"{r['path']}: {r['predicted']} ({r['probability']:.3f})   [{top}]")
    return "\n".join(lines)


def evaluate(args):
    from resnet_course.data import datasets
    from resnet_course.training import inference, reporting

    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    if inference.model_file_kind(args.model) == "h5":
        log(f"note: {args.model} is in the legacy HDF5 format; Keras 3 saves .keras files "
            f"(model.save('name.keras')).")
    model = inference.load_model_file(args.model)
    raw_pixels = None if args.pixels == "auto" else args.pixels == "raw"
    if raw_pixels is None:
        raw_pixels = inference.takes_raw_pixels(model)
    run_info = run_info_next_to(args.model)
    images = expand_image_paths([*args.images, *args.image])
    data = args.data
    if data is None and not images:
        # the run's own test split, the same subset as train.py's final evaluation
        config = (run_info or {}).get("config", {})
        data = config.get("dataset")
        if data is None and args.heldout is None:
            raise inference.ModelFileError(
                f"nothing to evaluate: give --data (signs, cifar10 or a .h5 file) or image "
                f"files; there is no metrics.json next to {args.model} to name its data set.")
        if args.test_size is None:
            args.test_size, args.seed = config.get("test_size"), config.get("seed", 0)
    summary = {"model": str(args.model), "pixels": "raw 0-255" if raw_pixels else "0-1",
               "mirror_average": args.mirror_average}
    if data is not None:
        summary["data"] = evaluate_data(model, data, args, raw_pixels, log)
    if args.heldout is not None:
        summary["heldout"] = evaluate_heldout(model, args.heldout, args, raw_pixels, log)
    if images:
        if "data" in summary:
            class_names = summary["data"]["class_names"]
        elif run_info:
            class_names = run_info["dataset"]["class_names"]
        else:
            class_names = datasets.default_class_names(inference.num_classes(model))
        summary["crop"] = crop_for(args.crop, class_names)
        images, summary["skipped"] = readable_images(images, warn)
        summary["images"] = classify_images(model, images, list(class_names), raw_pixels,
                                            args.mirror_average, summary["crop"])

    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        if "data" in summary:
            mirrored = ", averaged with mirror images" if args.mirror_average else ""
            print(f"{summary['data']['name']} ({summary['pixels']} pixels into the model"
                  f"{mirrored})")
            print(reporting.format_summary(summary["data"]))
        if "heldout" in summary:
            held = summary["heldout"]
            print(f"\nheld-out photos from another source: {held['name']}\n"
                  f"source: {held['source'] or 'not recorded'}\nlicence: {held['licence'] or 'not recorded'}")
            print(reporting.format_summary(held))
        if "images" in summary:
            print(format_images(summary["images"]))
    return summary


def main(argv=None):
    args = build_parser().parse_intermixed_args(argv)  # images may follow the options
    if args.test_size is not None and args.test_size < 1:
        return cli.fail(PROG, f"--test-size must be at least 1, got {args.test_size}",
                        cli.EXIT_USAGE)
    if args.batch_size < 1:
        return cli.fail(PROG, f"--batch-size must be at least 1, got {args.batch_size}",
                        cli.EXIT_USAGE)

    tf_environment.import_tensorflow_quietly()  # without its start-up notice
    from resnet_course.data import datasets
    from resnet_course.training import inference

    errors = (inference.ModelFileError, inference.ImageError, *datasets.DATA_ERRORS, OSError)
    def body():
        evaluate(args)

    return cli.run_main(PROG, body, errors)


if __name__ == "__main__":
    sys.exit(main())
