"""Misuse of CRPSGD under horovodrun: the same clear error on every rank, and no hang."""

from tests.horovod.launch import horovodrun


def test_invalid_argument_fails_every_rank():
    result = horovodrun("misuse.py", "invalid_micro_batch", np=2, timeout=120)

    assert result.returncode != 0
    for rank in (0, 1):
        assert f"[{rank}]<stderr>:ValueError: micro_batch_size must be >= 1, got 0" in result.stdout


def test_misordered_loop_raises_on_every_rank():
    result = horovodrun("misuse.py", "loop_errors", np=2, timeout=120)

    assert result.returncode == 0, result.stdout
    for rank in (0, 1):
        assert f"rank {rank} RuntimeError: step() needs an open round" in result.stdout
        assert f"rank {rank} RuntimeError: round 1 is still open" in result.stdout
        assert f"rank {rank} ValueError: num_samples must equal the size of micro-batch 1 of round 1" in result.stdout
        assert f"rank {rank} RuntimeError: round 1 still needs 1 of its 2 micro-batches" in result.stdout
        assert f"rank {rank} RuntimeError: cannot save state inside round 1, because" in result.stdout
        assert f"rank {rank} ValueError: optimizer must be a plain torch.optim optimizer" in result.stdout
        assert result.stdout.count(f"rank {rank} ValueError: model's parameters are already wrapped by "
                                   "a CRPSGD") == 2
        assert f"rank {rank} all errors raised" in result.stdout


def test_one_failing_rank_ends_job():
    # Rank 0 waits in the initial broadcast for rank 1, which has already failed;
    # horovodrun must end the whole job instead of letting rank 0 wait forever.
    result = horovodrun("misuse.py", "one_rank_invalid", np=2, timeout=120)

    assert result.returncode != 0
    assert "[1]<stderr>:ValueError: budget must be >= the first batch B1 = 2" in result.stdout
