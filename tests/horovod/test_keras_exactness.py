"""CRPSGDCallback under horovodrun -np 2 against a single-process float64 reference."""

import json
import sys

import numpy as np
import pytest

from crpsgd_hvd import GeometricSchedule, micro_batch_sizes, planned_batches
from tests.horovod.launch import WORKERS, horovodrun

keras_adapter = pytest.importorskip("crpsgd_hvd.keras", reason="the Keras adapter needs TensorFlow")
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

sys.path.insert(0, str(WORKERS))
from keras_common import (  # noqa: E402
    CATALYST, SETTINGS, global_batch_gradients, make_model, rank_samples, reference_rounds)

NUM_WORKERS = 2


@pytest.mark.parametrize("micro_batch_size, leftover", [(1, "drop"), (7, "final_round")])
def test_rounds_match_reference(tmp_path, micro_batch_size, leftover):
    result = horovodrun("keras_exactness.py", tmp_path, micro_batch_size, leftover, np=NUM_WORKERS, timeout=300)
    assert result.returncode == 0, result.stdout
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(NUM_WORKERS)]
    schedule = GeometricSchedule(SETTINGS["b1"], SETTINGS["rho"], SETTINGS["b_max"])
    expected_batches = planned_batches(schedule, SETTINGS["budget"], leftover)
    expected_steps = sum(len(micro_batch_sizes(b, micro_batch_size)) for b in expected_batches)

    assert ranks[0]["initial"] == ranks[1]["initial"], "the broadcast did not give both ranks rank 0's start"
    for rank in ranks:
        assert [r["batch"] for r in rank["rounds"]] == expected_batches
        assert rank["steps"] == expected_steps
        assert rank["steps_left"] == 0
        assert rank["iterations"] == len(expected_batches)
        assert [r["iterations"] for r in rank["rounds"]] == list(range(1, len(expected_batches) + 1))
        assert rank["allreduce_count"] == len(expected_batches)
        assert rank["accounting"]["rounds"] == len(expected_batches)
        assert rank["accounting"]["allreduce_calls"] == len(expected_batches)
        assert rank["history"]["rounds"] == [len(expected_batches)]
        assert rank["history"]["samples"] == [sum(expected_batches)]

    reference = reference_rounds(ranks[0]["initial"], expected_batches)
    for t, expected in enumerate(reference):
        for rank in ranks:
            for got, want in zip(rank["rounds"][t]["weights"], expected):
                np.testing.assert_allclose(np.array(got), want, rtol=0, atol=1e-12,
                                           err_msg=f"round {t + 1}")


def catalyst_reference(initial, batches_per_outer):
    """Yield the weights after each round of Algorithm 2 on both ranks' samples, optimizer reset per call."""
    model = make_model()
    model.set_weights([np.array(w) for w in initial])
    samples = [rank_samples(rank) for rank in range(NUM_WORKERS)]
    position = 0
    for _ in range(CATALYST["outer"]):
        anchor = [tf.constant(v.numpy()) for v in model.trainable_variables]
        optimizer = tf_keras.optimizers.SGD(SETTINGS["lr"], momentum=SETTINGS["momentum"])
        for batch in batches_per_outer:
            grads = global_batch_gradients(model, samples, position, batch)
            position += batch
            grads = [g + CATALYST["theta"] * (v - a) for g, v, a in zip(grads, model.trainable_variables, anchor)]
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            yield model.get_weights()


def test_catalyst_rounds_match_reference(tmp_path):
    result = horovodrun("keras_exactness.py", tmp_path, 4, "drop", "catalyst", np=NUM_WORKERS, timeout=300)
    assert result.returncode == 0, result.stdout
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(NUM_WORKERS)]
    schedule = GeometricSchedule(SETTINGS["b1"], SETTINGS["rho"], SETTINGS["b_max"])
    inner_batches = planned_batches(schedule, CATALYST["inner_budget"])
    total_rounds = CATALYST["outer"] * len(inner_batches)

    for rank in ranks:
        assert [r["batch"] for r in rank["rounds"]] == inner_batches * CATALYST["outer"]
        assert rank["iterations"] == total_rounds
        assert rank["allreduce_count"] == total_rounds
        assert rank["history"]["outer"] == [CATALYST["outer"]]

    reference = catalyst_reference(ranks[0]["initial"], inner_batches)
    for t, expected in enumerate(reference):
        for rank in ranks:
            for got, want in zip(rank["rounds"][t]["weights"], expected):
                np.testing.assert_allclose(np.array(got), want, rtol=0, atol=1e-12, err_msg=f"round {t + 1}")
