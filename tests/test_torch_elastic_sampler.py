"""GlobalBatchSampler against an independent implementation of its documented dealing rule."""

import pytest
import torch

from crpsgd_hvd.torch.elastic import GlobalBatchSampler
from tests.elastic_reference import reference_global_batches

# Rounds of growing global batches over 23 samples: they cross several epoch ends, one of them exactly.
BATCHES = [4, 4, 6, 9, 1, 13, 17, 20, 23, 5, 23]


def deal(sampler, batches):
    dealt = []
    for batch in batches:
        dealt.append(sampler.round_indices(batch).tolist())
        sampler.advance(batch)
    return dealt


def test_rounds_follow_the_documented_rule():
    sampler = GlobalBatchSampler([torch.arange(23)], seed=4)

    assert deal(sampler, BATCHES) == reference_global_batches(23, 4, BATCHES)
    assert sampler.dealt == sum(BATCHES)


def test_no_repeats_and_full_epochs():
    sampler = GlobalBatchSampler([torch.arange(23)], seed=9)

    dealt = deal(sampler, BATCHES)

    for batch in dealt:
        assert len(set(batch)) == len(batch)
    flat = [i for batch in dealt for i in batch]
    for start in range(0, len(flat) - 22, 23):
        assert sorted(flat[start:start + 23]) == list(range(23))


def test_round_indices_does_not_move_the_position():
    sampler = GlobalBatchSampler([torch.arange(10)], seed=1)

    first = sampler.round_indices(8).tolist()

    assert sampler.round_indices(8).tolist() == first
    assert sampler.state_dict()["dealt"] == 0


@pytest.mark.parametrize("stop", range(len(BATCHES)))
def test_state_dict_resumes_the_stream(stop):
    uninterrupted = deal(GlobalBatchSampler([torch.arange(23)], seed=2), BATCHES)
    sampler = GlobalBatchSampler([torch.arange(23)], seed=2)
    deal(sampler, BATCHES[:stop])

    resumed = GlobalBatchSampler([torch.arange(23)], seed=2)
    resumed.load_state_dict(sampler.state_dict())

    assert deal(resumed, BATCHES[stop:]) == uninterrupted[stop:]


def test_samples_returns_every_tensor_at_the_indices():
    inputs, targets = torch.arange(12.0).reshape(6, 2), torch.arange(6) * 10
    sampler = GlobalBatchSampler([inputs, targets], seed=0, shuffle=False)

    got_inputs, got_targets = sampler.samples(sampler.round_indices(3))

    assert torch.equal(got_inputs, inputs[:3])
    assert torch.equal(got_targets, torch.tensor([0, 10, 20]))


def test_without_shuffle_a_crossing_round_defers_its_samples():
    sampler = GlobalBatchSampler([torch.arange(5)], seed=0, shuffle=False)

    assert deal(sampler, [3, 4, 3]) == [[0, 1, 2], [3, 4, 0, 1], [2, 3, 4]]


def test_global_batch_larger_than_the_data_is_rejected():
    sampler = GlobalBatchSampler([torch.arange(5)], seed=0)

    with pytest.raises(ValueError, match="global_batch must be <= the data set length 5 so that no sample "
                                         "appears twice in a round, got 6"):
        sampler.round_indices(6)


def test_state_of_other_data_is_rejected():
    state = GlobalBatchSampler([torch.arange(5)], seed=0).state_dict()

    with pytest.raises(ValueError, match="state was saved for data .*'seed': 0.*this sampler has .*'seed': 1"):
        GlobalBatchSampler([torch.arange(5)], seed=1).load_state_dict(state)
