"""Communication accounting: rounds, samples and bytes, per worker and in total.

Bytes are a model, not a measurement of the network: a bandwidth-optimal ring
allreduce of a payload of P bytes over N workers makes each worker send
2 (N - 1) / N * P bytes (a reduce-scatter then an allgather). Gloo's and
NCCL's ring allreduces send that amount; tree and hierarchical algorithms
send different amounts, and Horovod's fusion-buffer padding is not counted.
"""

import dataclasses

from crpsgd_hvd._validation import check_int

__all__ = ["CommunicationAccounting", "ring_allreduce_bytes"]


def ring_allreduce_bytes(payload_bytes, num_workers):
    """Return the bytes one worker sends in a ring allreduce of ``payload_bytes``.

    2 (N - 1) / N * payload, rounded to the nearest byte; 0 for a single worker.
    """
    payload_bytes = check_int("payload_bytes", payload_bytes, minimum=0)
    num_workers = check_int("num_workers", num_workers, minimum=1)
    return round(2 * (num_workers - 1) * payload_bytes / num_workers)


@dataclasses.dataclass
class CommunicationAccounting:
    """Counters that a training run advances once per communication round.

    Attributes:
        num_workers (int): N, the workers that take part in each allreduce.
        rounds (int): communication rounds completed.
        allreduce_calls (int): collective calls issued for those rounds; equal
            to ``rounds`` when every round's gradients go out in one fused call.
        samples (int): stochastic gradients computed by this worker.
        payload_bytes (int): bytes of gradient this worker contributed to allreduces.
        bytes_sent (int): bytes this worker sent, by the ring model above.
    """

    num_workers: int = 1
    rounds: int = 0
    allreduce_calls: int = 0
    samples: int = 0
    payload_bytes: int = 0
    bytes_sent: int = 0

    def record_allreduce(self, payload_bytes, num_workers=None):
        """Count one collective call that carried ``payload_bytes`` from this worker.

        ``num_workers`` is the number of workers in that call, if it differs
        from :attr:`num_workers` (an elastic job after a resize).
        """
        num_workers = self.num_workers if num_workers is None else num_workers
        bytes_sent = ring_allreduce_bytes(payload_bytes, num_workers)  # validates first

        self.allreduce_calls += 1
        self.payload_bytes += payload_bytes
        self.bytes_sent += bytes_sent

    def record_round(self, samples):
        """Count one completed round in which this worker used ``samples`` samples."""
        self.rounds += 1
        self.samples += samples

    @property
    def total_samples(self):
        """Samples over all workers; every worker uses the same batch in a round."""
        return self.samples * self.num_workers

    @property
    def total_bytes_sent(self):
        """Bytes sent over all workers."""
        return self.bytes_sent * self.num_workers

    def state_dict(self):
        return dataclasses.asdict(self)

    def load_state_dict(self, state):
        for field in dataclasses.fields(self):
            setattr(self, field.name, check_int(f"state[{field.name!r}]", state[field.name], minimum=0))
