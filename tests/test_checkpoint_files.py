"""The per-rank checkpoint file checks, on real files in a temporary folder."""

import pytest

from crpsgd_hvd._checkpoint_files import check_saved_by, rank_file, require_rank_file


@pytest.fixture
def saved_by_two(tmp_path):
    """A folder with the files of a 2-worker save, a leftover temporary file and another adapter's file."""
    for name in ("rank0.pt", "rank1.pt", "rank1.pt.tmp", "rank7.npz"):
        (tmp_path / name).write_bytes(b"")
    return tmp_path


def test_rank_file_name(tmp_path):
    assert rank_file(tmp_path, 3, ".pt") == tmp_path / "rank3.pt"


def test_present_file_passes(saved_by_two):
    require_rank_file(saved_by_two / "rank1.pt")


def test_extra_rank_names_saved_ranks(saved_by_two):
    path = saved_by_two / "rank2.pt"
    with pytest.raises(FileNotFoundError) as error:
        require_rank_file(path)
    assert str(error.value) == (f"checkpoint file {path} not found: {saved_by_two} has the files of ranks [0, 1] "
                                "only. Resume with the number of workers that saved them")


def test_other_suffix_counts_apart(saved_by_two):
    path = saved_by_two / "rank0.npz"
    with pytest.raises(FileNotFoundError, match=r"has the files of ranks \[7\] only"):
        require_rank_file(path)


def test_folder_without_rank_files(tmp_path):
    path = tmp_path / "rank0.pt"
    with pytest.raises(FileNotFoundError) as error:
        require_rank_file(path)
    assert str(error.value) == f"checkpoint file {path} not found, and {tmp_path} has no rank files"


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        require_rank_file(tmp_path / "absent" / "rank0.pt")
    assert str(error.value) == f"checkpoint directory {tmp_path / 'absent'} not found"


@pytest.mark.parametrize("saved", [{"rank": 1, "size": 2}, {"rank": 0, "size": 3}, {}])
def test_other_rank_or_size_rejected(saved):
    with pytest.raises(ValueError) as error:
        check_saved_by("ckpt/rank0.pt", saved, 0, 2)
    assert str(error.value) == (f"checkpoint ckpt/rank0.pt was saved by rank {saved.get('rank')} of "
                                f"{saved.get('size')} workers, this is rank 0 of 2: resume with the same number "
                                "of workers")


def test_same_rank_and_size_pass():
    check_saved_by("ckpt/rank0.pt", {"rank": 0, "size": 2}, 0, 2)
