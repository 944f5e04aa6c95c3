#@title Setup: run this cell first (it does nothing in the course's folder)
# The files this notebook needs (modules, data, images) must sit beside it. In the course's folder
# they do. Otherwise this cell takes them from the course's zip, ResNet50-files.zip or ResNet50.zip:
# one beside the notebook, else downloaded from FILES_URL, else (on Colab) one you upload. It unpacks
# nothing unless the files are exactly the course's. You need not read the rest.
import hashlib
import io
import os
import urllib.request
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no TensorFlow start-up log lines (set before it loads)

# Where the course publishes ResNet50-files.zip ("": nowhere), and the sha256 of the files' listing.
FILES_URL = "$files_url"
FILES_SHA256 = "$files_sha256"
REQUIRED_FILES = $required_files
ZIP_NAMES = ["ResNet50-files.zip", "ResNet50.zip"]
NOT_UNPACKED = {"ResNet50.ipynb", "README.md", "requirements.txt"}  # ResNet50.zip's own: never overwrite yours


def course_files(archive, origin):
    """{name: bytes} of the course files in a zip's bytes, or None if they are not exactly the
    course's (ResNet50.zip holds them in its folder ResNet50/)."""
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
            files = {info.filename.removeprefix("ResNet50/"): zipped.read(info)
                     for info in zipped.infolist() if not info.is_dir()}
    except Exception as err:  # not a zip, or a damaged one
        print(f"{origin} is not a readable zip ({err}).")
        return None
    files = {name: data for name, data in files.items() if name not in NOT_UNPACKED}
    listing = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items()))
    if hashlib.sha256(listing.encode()).hexdigest() != FILES_SHA256:
        print(f"{origin} does not hold the files this notebook expects (wrong checksum).")
        return None
    return files


if not all(Path(name).is_file() for name in REQUIRED_FILES):
    files = None
    for name in ZIP_NAMES:
        if files is None and Path(name).is_file():
            files = course_files(Path(name).read_bytes(), name)
    if files is None and FILES_URL:
        print("Downloading the course files from", FILES_URL)
        try:
            with urllib.request.urlopen(FILES_URL, timeout=120) as response:
                files = course_files(response.read(), FILES_URL)
        except OSError as err:
            print(f"Could not download them ({err}).")
    try:
        from google.colab import files as colab_files  # only on Colab
    except ImportError:
        colab_files = None
    if files is None and colab_files is not None:
        print("Upload ResNet50-files.zip or ResNet50.zip, as your course gave it to you:")
        for name, data in colab_files.upload().items():
            files = files or course_files(data, name)
    if files is None:
        raise RuntimeError(f"The course files are missing and nothing was unpacked: put ResNet50-files.zip "
                           f"or ResNet50.zip from your course beside this notebook (in {Path.cwd()}) and "
                           f"run this cell again.")
    for name, data in files.items():
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).write_bytes(data)
    print(f"Unpacked {len(files)} course files into", Path.cwd())
