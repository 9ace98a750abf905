"""An independent implementation of GlobalBatchSampler's documented dealing rule, for the tests."""

import torch


def reference_global_batches(length, seed, batches):
    """Deal ``batches`` from epochs of randperm(length), each seeded seed * 1_000_003 + epoch.

    The documented rule: a round takes the next samples of the stream, and when
    it crosses into a new epoch, that epoch's samples already in the round go
    to the end of the epoch.
    """
    def permutation(epoch):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        return torch.randperm(length, generator=generator).tolist()

    epoch, order, position, dealt = 0, permutation(0), 0, []
    for batch in batches:
        taken = order[position:position + batch]
        position += len(taken)
        if len(taken) < batch:
            epoch += 1
            fresh = permutation(epoch)
            order = [i for i in fresh if i not in taken] + [i for i in fresh if i in taken]
            position = batch - len(taken)
            taken = taken + order[:position]
        dealt.append(taken)
    return dealt
