"""Splitting a round's global batch among the workers present, for elastic jobs.

In an elastic job the number of workers N changes between rounds. The
schedule then fixes the global batch G_t = N_ref * B_t, where N_ref is the
reference number of workers the run was planned for, and the N workers
present share it as evenly as possible: the first G_t mod N ranks take
floor(G_t / N) + 1 samples, the others floor(G_t / N). Each worker's part is
a contiguous slice of the round's global batch, so the parts never overlap.
"""

from crpsgd_hvd._validation import check_int

__all__ = ["worker_share"]


def worker_share(global_batch, num_workers, rank):
    """Return ``(start, size)``: the slice of a round's global batch that ``rank`` of ``num_workers`` takes.

    >>> [worker_share(10, 3, rank) for rank in range(3)]
    [(0, 4), (4, 3), (7, 3)]
    """
    global_batch = check_int("global_batch", global_batch, minimum=1)
    num_workers = check_int("num_workers", num_workers, minimum=1)
    rank = check_int("rank", rank, minimum=0)
    if rank >= num_workers:
        raise ValueError(f"rank must be < num_workers = {num_workers}, got {rank}")
    base, extra = divmod(global_batch, num_workers)
    return rank * base + min(rank, extra), base + (1 if rank < extra else 0)
