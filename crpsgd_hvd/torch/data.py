"""Sampling a worker's own shard: fresh samples for each micro-batch."""

import torch

from crpsgd_hvd._validation import check_int

__all__ = ["ShardSampler"]


class ShardSampler:
    """Draw consecutive samples from shuffled passes (epochs) over one worker's shard.

    Each epoch is a fresh random permutation of the shard, drawn from a
    generator seeded with ``seed`` (give every rank its own seed). A request
    that crosses the end of an epoch takes the rest of the epoch and the start
    of the next, so every sample is used once per epoch and a micro-batch may
    mix two epochs.

    Shards of different lengths: a draw never runs out, it wraps into the
    next epoch, so every rank serves every round's B_t samples and the rounds'
    allreduces stay matched across ranks (no deadlock). A rank with a shorter
    shard passes over its samples more often: after S >= 1 samples, a shard
    of length M is in epoch floor((S - 1) / M), counted from 0, because the
    sampler moves to the next epoch only when a draw needs it.

    Args:
        tensors (sequence of torch.Tensor): the shard's tensors (for example
            inputs and targets), all with the same length along dim 0.
        seed (int): seed of the shuffling generator, >= 0.
        shuffle (bool): permute each epoch; if False, epochs run in order.
            Default: True.
    """

    def __init__(self, tensors, seed, shuffle=True):
        self.tensors = check_sample_tensors(tensors)
        self.seed = check_int("seed", seed, minimum=0)
        self.shuffle = shuffle
        self.epoch = 0
        self.position = 0
        self._order = self._epoch_order(0)

    def __len__(self):
        return self.tensors[0].shape[0]

    def draw(self, num_samples):
        """Return a tuple of tensors holding the next ``num_samples`` samples."""
        num_samples = check_int("num_samples", num_samples, minimum=1)

        pieces = []
        while num_samples > 0:
            if self.position == len(self):
                self.epoch += 1
                self.position = 0
                self._order = self._epoch_order(self.epoch)
            take = min(num_samples, len(self) - self.position)
            pieces.append(self._order[self.position:self.position + take])
            self.position += take
            num_samples -= take

        indices = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
        return tuple(t[indices] for t in self.tensors)

    def state_dict(self):
        return {"seed": self.seed, "shuffle": self.shuffle, "epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state):
        if state["seed"] != self.seed or state["shuffle"] != self.shuffle:
            raise ValueError(f"state was saved with seed={state['seed']}, shuffle={state['shuffle']}; "
                             f"this sampler has seed={self.seed}, shuffle={self.shuffle}")
        self.epoch = check_int("state['epoch']", state["epoch"], minimum=0)
        self.position = check_int("state['position']", state["position"], minimum=0)
        if self.position > len(self):
            raise ValueError(f"state['position'] must be <= the shard length {len(self)}, got {self.position}")
        self._order = self._epoch_order(self.epoch)

    def _epoch_order(self, epoch):
        if not self.shuffle:
            return torch.arange(len(self))
        # One generator per epoch, so that any epoch's order can be rebuilt on resume.
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(len(self), generator=generator)


def check_sample_tensors(tensors):
    """Return ``tensors`` as a tuple after checking that they share one non-zero length along dim 0."""
    tensors = tuple(tensors)
    if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        raise ValueError(f"tensors must be a non-empty sequence of torch.Tensor, got {tensors!r}")
    lengths = {t.shape[0] for t in tensors}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(f"tensors must share one non-zero length along dim 0, got lengths "
                         f"{[t.shape[0] for t in tensors]}")
    return tensors
