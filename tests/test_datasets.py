"""Tests for crpsgd_hvd.datasets: CIFAR-10 pickles written by the test, and the folder errors."""

import pickle

import numpy as np
import pytest

from crpsgd_hvd.datasets import load_cifar10

NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


def image_rows(first, count):
    """Return ``count`` images as CIFAR rows: pixel (c, y, x) of image i is (i + c + y + x) mod 256."""
    rows = []
    for i in range(first, first + count):
        planes = [[(i + c + y + x) % 256 for y in range(32) for x in range(32)] for c in range(3)]
        rows.append(sum(planes, []))
    return np.array(rows, dtype=np.uint8)


def write_pickle(path, content):
    with open(path, "wb") as file:
        pickle.dump(content, file)


def write_tiny_cifar(folder, per_batch=3):
    folder.mkdir(exist_ok=True)
    for index in range(1, 6):
        first = (index - 1) * per_batch
        write_pickle(folder / f"data_batch_{index}", {
            b"batch_label": f"training batch {index} of 5".encode(), b"data": image_rows(first, per_batch),
            b"labels": [(first + j) % 10 for j in range(per_batch)],
            b"filenames": [f"img{first + j}.png".encode() for j in range(per_batch)]})
    write_pickle(folder / "test_batch", {b"data": image_rows(100, 2), b"labels": [7, 2]})
    write_pickle(folder / "batches.meta", {b"label_names": NAMES, b"num_cases_per_batch": per_batch,
                                           b"num_vis": 3072})
    return folder


def test_loads_tiny_set(tmp_path):
    data = load_cifar10(write_tiny_cifar(tmp_path / "cifar"))

    assert data.train_images.shape == (15, 3, 32, 32)
    assert data.train_images.dtype == np.uint8
    assert data.train_labels.tolist() == [i % 10 for i in range(15)]
    assert data.test_images.shape == (2, 3, 32, 32)
    assert data.test_labels.tolist() == [7, 2]
    assert data.class_names[0] == "airplane"
    assert data.class_names[9] == "truck"
    # Image 4, green channel (c = 1), row 2, column 5: (4 + 1 + 2 + 5) mod 256 = 12.
    assert data.train_images[4, 1, 2, 5] == 12
    # Test image 1 is image 101: blue channel, row 31, column 31: (101 + 2 + 62) = 165.
    assert data.test_images[1, 2, 31, 31] == 165


def test_missing_folder_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"CIFAR-10 folder '.*nowhere' not found"):
        load_cifar10(tmp_path / "nowhere")


def test_missing_file_named(tmp_path):
    folder = write_tiny_cifar(tmp_path / "cifar")
    (folder / "data_batch_3").unlink()
    (folder / "batches.meta").unlink()

    with pytest.raises(FileNotFoundError, match=r"cifar' is missing data_batch_3, batches.meta"):
        load_cifar10(folder)


def test_garbage_file_malformed(tmp_path):
    folder = write_tiny_cifar(tmp_path / "cifar")
    (folder / "test_batch").write_bytes(b"not a pickle")

    with pytest.raises(ValueError, match=r"test_batch is malformed: not a readable CIFAR-10 pickle"):
        load_cifar10(folder)


def test_wrong_data_shape_malformed(tmp_path):
    folder = write_tiny_cifar(tmp_path / "cifar")
    write_pickle(folder / "data_batch_2", {b"data": np.zeros((3, 100), dtype=np.uint8), b"labels": [0, 1, 2]})

    with pytest.raises(ValueError, match=r"data_batch_2 is malformed: expected 'data', a uint8 array of shape "
                                         r"\(n, 3072\), got ndarray of shape \(3, 100\)"):
        load_cifar10(folder)


def test_labels_out_of_range_malformed(tmp_path):
    folder = write_tiny_cifar(tmp_path / "cifar")
    write_pickle(folder / "data_batch_1", {b"data": image_rows(0, 2), b"labels": [3, 10]})

    with pytest.raises(ValueError, match=r"data_batch_1 is malformed: expected 'labels', 2 ints in 0\.\.9"):
        load_cifar10(folder)


def test_meta_without_names_malformed(tmp_path):
    folder = write_tiny_cifar(tmp_path / "cifar")
    write_pickle(folder / "batches.meta", {b"num_vis": 3072})

    with pytest.raises(ValueError, match=r"batches.meta is malformed: expected 'label_names'"):
        load_cifar10(folder)
