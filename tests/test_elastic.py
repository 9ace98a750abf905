"""worker_share: each round's global batch split among the workers present."""

import pytest

from crpsgd_hvd.elastic import worker_share


# ElasticCRPSGD needs a global batch of at least one sample per worker.
CASES = [(batch, workers) for batch in (1, 2, 7, 8, 9, 40, 97) for workers in range(1, 9) if batch >= workers]


@pytest.mark.parametrize("global_batch, num_workers", CASES)
def test_shares_tile_the_global_batch_evenly(global_batch, num_workers):
    shares = [worker_share(global_batch, num_workers, rank) for rank in range(num_workers)]

    covered = [i for start, size in shares for i in range(start, start + size)]
    assert covered == list(range(global_batch))
    sizes = [size for _, size in shares]
    quotient, remainder = divmod(global_batch, num_workers)
    assert sizes == [quotient + 1] * remainder + [quotient] * (num_workers - remainder)


@pytest.mark.parametrize("arguments, message", [
    ((0, 2, 0), "global_batch must be >= 1, got 0"),
    ((4, 0, 0), "num_workers must be >= 1, got 0"),
    ((4, 2, 2), "rank must be < num_workers = 2, got 2"),
    ((4, 2, -1), "rank must be >= 0, got -1"),
])
def test_invalid_arguments_are_named(arguments, message):
    with pytest.raises(ValueError, match=message):
        worker_share(*arguments)
