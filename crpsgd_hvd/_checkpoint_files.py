"""Per-rank checkpoint files, shared by the adapters: their names and the checks made before reading one.

Each rank writes ``DIRECTORY/rank<r><suffix>``, so a resume needs the number
of workers that saved. These checks word the errors for both adapters alike.
"""

import re
from pathlib import Path


def rank_file(directory, rank, suffix):
    """Return the checkpoint file of ``rank`` in ``directory``, e.g. ``ckpt/rank3.pt``."""
    return Path(directory) / f"rank{rank}{suffix}"


def require_rank_file(path):
    """Raise FileNotFoundError, naming the worker-count rule, when this rank's checkpoint file is missing.

    A resume with more workers than the save finds no file for the extra
    ranks, so the message lists the ranks whose files are there.
    """
    path = Path(path)
    if path.is_file():
        return
    directory = path.parent
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint directory {directory} not found")
    name = re.compile(rf"rank(\d+){re.escape(path.suffix)}")
    saved = sorted(int(match.group(1)) for file in directory.iterdir() if (match := name.fullmatch(file.name)))
    if not saved:
        raise FileNotFoundError(f"checkpoint file {path} not found, and {directory} has no rank files")
    raise FileNotFoundError(f"checkpoint file {path} not found: {directory} has the files of ranks {saved} only. "
                            "Resume with the number of workers that saved them")


def check_saved_by(path, saved, rank, size):
    """Raise ValueError unless the file's metadata ``saved`` names this ``rank`` and world ``size``."""
    if saved.get("rank") != rank or saved.get("size") != size:
        raise ValueError(f"checkpoint {path} was saved by rank {saved.get('rank')} of {saved.get('size')} "
                         f"workers, this is rank {rank} of {size}: resume with the same number of workers")
