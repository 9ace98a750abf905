"""Loaders for data sets on disk, as NumPy arrays (no framework imports, no downloads)."""

import dataclasses
import logging
import pickle
from pathlib import Path

import numpy as np

__all__ = ["CIFAR10", "load_cifar10"]

logger = logging.getLogger(__name__)

CIFAR10_TRAIN_FILES = tuple(f"data_batch_{index}" for index in range(1, 6))
CIFAR10_FILES = (*CIFAR10_TRAIN_FILES, "test_batch", "batches.meta")
CIFAR10_PIXELS = 3 * 32 * 32


@dataclasses.dataclass(frozen=True)
class CIFAR10:
    """CIFAR-10 as arrays.

    Attributes:
        train_images (numpy.ndarray): uint8, shape (n_train, 3, 32, 32), channels R, G, B.
        train_labels (numpy.ndarray): int64, shape (n_train,), values 0..9.
        test_images (numpy.ndarray): uint8, shape (n_test, 3, 32, 32).
        test_labels (numpy.ndarray): int64, shape (n_test,).
        class_names (tuple of str): the 10 names, indexed by label.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple


def load_cifar10(folder) -> CIFAR10:
    """Load the CIFAR-10 "python version" files from ``folder``.

    The folder must contain ``data_batch_1`` .. ``data_batch_5``,
    ``test_batch`` and ``batches.meta``, the pickles of the standard
    ``cifar-10-python.tar.gz`` (usually extracted as ``cifar-10-batches-py``).
    Each batch is a dict with ``data``, a uint8 array of shape (n, 3072)
    holding the red, green and blue 32x32 planes of each image row by row, and
    ``labels``, a list of n ints in 0..9; ``batches.meta`` holds ``label_names``.
    Batches of any size are accepted, so a small set in the same format loads too.

    Unpickling can run code stored in the file: load only files you trust.

    Raises:
        FileNotFoundError: if the folder or one of its files is missing; the
            message names the folder and the file.
        ValueError: if a file is not a pickle of the expected layout; the
            message names the file and what is wrong.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"CIFAR-10 folder {str(folder)!r} not found: extract cifar-10-python.tar.gz "
                                f"and pass the cifar-10-batches-py folder, which holds {', '.join(CIFAR10_FILES)}")
    missing = [name for name in CIFAR10_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 folder {str(folder)!r} is missing {', '.join(missing)}; "
                                f"it must hold {', '.join(CIFAR10_FILES)}")

    meta = read_pickle(folder / "batches.meta")
    class_names = meta.get(b"label_names")
    if not isinstance(class_names, list) or len(class_names) != 10:
        raise ValueError(f"{folder / 'batches.meta'} is malformed: expected 'label_names', a list of 10 names, "
                         f"got {class_names!r}")
    class_names = tuple(name.decode() if isinstance(name, bytes) else str(name) for name in class_names)

    train = [read_batch(folder / name) for name in CIFAR10_TRAIN_FILES]
    test_images, test_labels = read_batch(folder / "test_batch")
    train_images = np.concatenate([images for images, _ in train])
    train_labels = np.concatenate([labels for _, labels in train])
    logger.info("loaded CIFAR-10 from %s: %d training and %d test images", folder, len(train_labels),
                len(test_labels))
    return CIFAR10(train_images, train_labels, test_images, test_labels, class_names)


def read_pickle(path):
    try:
        with open(path, "rb") as file:
            content = pickle.load(file, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as error:
        raise ValueError(f"{path} is malformed: not a readable CIFAR-10 pickle ({error})") from error
    if not isinstance(content, dict):
        raise ValueError(f"{path} is malformed: expected a pickled dict, got {type(content).__name__}")
    return content


def read_batch(path):
    """Return (images of shape (n, 3, 32, 32), labels of shape (n,)) from one batch file."""
    batch = read_pickle(path)
    data, labels = batch.get(b"data"), batch.get(b"labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != CIFAR10_PIXELS:
        shape = getattr(data, "shape", None)
        raise ValueError(f"{path} is malformed: expected 'data', a uint8 array of shape (n, {CIFAR10_PIXELS}), "
                         f"got {type(data).__name__} of shape {shape}")
    labels = np.asarray(labels if labels is not None else [], dtype=np.int64)
    if labels.shape != (data.shape[0],) or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise ValueError(f"{path} is malformed: expected 'labels', {data.shape[0]} ints in 0..9, "
                         f"got shape {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels
