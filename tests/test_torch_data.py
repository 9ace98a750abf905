"""ShardSampler at the end of a shard: draws wrap into a new epoch instead of running out."""

import pytest
import torch

from crpsgd_hvd.torch import ShardSampler


def drawn_ids(sampler, sizes):
    return [sampler.draw(size)[0].tolist() for size in sizes]


def test_draws_wrap_into_new_epochs():
    sampler = ShardSampler([torch.arange(5)], seed=3)

    draws = drawn_ids(sampler, [3, 4, 6, 2])
    flat = [i for draw in draws for i in draw]

    assert [len(draw) for draw in draws] == [3, 4, 6, 2]
    # 15 samples from a 5-sample shard are exactly three passes, each a permutation.
    for epoch in range(3):
        assert sorted(flat[5 * epoch:5 * epoch + 5]) == [0, 1, 2, 3, 4]
    assert sampler.state_dict() == {"seed": 3, "shuffle": True, "epoch": 2, "position": 5}


@pytest.mark.parametrize("length", [1, 7, 256])
def test_unequal_shards_serve_every_round(length):
    batches = [3, 4, 6, 10, 15, 22, 33, 40, 40]  # GeometricSchedule(3, 1.5, b_max=40) within T = 200
    sampler = ShardSampler([torch.arange(length)], seed=0)

    served = [len(sampler.draw(batch)[0]) for batch in batches]

    assert served == batches
    # The sampler moves to the next epoch only when a draw needs it, so it ends on a full last epoch.
    total = sum(batches)
    state = sampler.state_dict()
    assert state["epoch"] == (total - 1) // length
    assert state["position"] == (total - 1) % length + 1


def test_resume_continues_the_same_order():
    sampler = ShardSampler([torch.arange(7)], seed=5)
    drawn_ids(sampler, [4, 5])
    resumed = ShardSampler([torch.arange(7)], seed=5)
    resumed.load_state_dict(sampler.state_dict())

    assert drawn_ids(resumed, [9]) == drawn_ids(sampler, [9])


def test_load_rejects_other_seed():
    sampler = ShardSampler([torch.arange(7)], seed=5)

    with pytest.raises(ValueError, match="state was saved with seed=6"):
        sampler.load_state_dict({"seed": 6, "shuffle": True, "epoch": 0, "position": 0})
