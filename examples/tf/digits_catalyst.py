"""CR-PSGD-Catalyst against classical parallel SGD in Keras, on scikit-learn's handwritten digits.

Run under Horovod, one process per worker:

    horovodrun -np 2 -H localhost:2 --gloo python examples/tf/digits_catalyst.py

The Keras counterpart of examples/torch/digits_catalyst.py: the same split
(20% held out, the rest in one shard per worker), the same small CNN shape
and defaults. Catalyst runs one epoch of the worker's shard per inner call
through ``model.fit`` with :class:`CatalystCallback`; PSGD uses Horovod's
Keras ``DistributedOptimizer`` at batch B1 on the same gradient budget.
Rank 0 prints a table and writes ``results.json``.
"""

import argparse
import json
import os
import sys
import time

# Keep TensorFlow's start-up notices (CUDA probing, oneDNN) from burying the table.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import crpsgd_hvd.keras as crpsgd_keras  # noqa: E402 (first: selects Keras 2 before TensorFlow loads)
import horovod.tensorflow.keras as hvd
import numpy as np
import tensorflow as tf
import tf_keras

from crpsgd_hvd import CatalystLoop, GeometricSchedule
from crpsgd_hvd.cli import check_schedule_flags


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outer", type=int, default=10, help="K, outer iterations of one epoch each (default: 10)")
    parser.add_argument("--b1", type=int, default=8, help="first per-worker batch B1 (default: 8)")
    parser.add_argument("--rho", type=float, default=1.2, help="batch growth factor rho (default: 1.2)")
    parser.add_argument("--b-max", type=int, default=128, help="cap on the per-worker batch (default: 128)")
    parser.add_argument("--theta", type=float, default=0.1, help="proximal weight theta (default: 0.1)")
    parser.add_argument("--lr", type=float, default=0.05, help="learning rate of both methods (default: 0.05)")
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum of both methods (default: 0.9)")
    parser.add_argument("--micro-batch-size", type=int, default=256,
                        help="samples per fit step in Catalyst (default: 256)")
    parser.add_argument("--seed", type=int, default=0, help="split, initialisation and sampling seed (default: 0)")
    parser.add_argument("--out-dir", default="runs/tf_digits_catalyst",
                        help="folder for results.json (default: runs/tf_digits_catalyst)")
    parser.add_argument("--verbose", type=int, default=1, help="Keras fit verbosity on rank 0 (default: 1)")
    args = parser.parse_args(argv)
    check_schedule_flags(parser, args)
    return args


def load_split(seed, rank, num_workers, test_fraction=0.2):
    """Return this worker's training shard and the held-out set as NumPy arrays (NHWC images)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]  # pixel values 0..16
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    num_test = round(test_fraction * len(labels))
    test, train = order[:num_test], order[num_test:]
    shard_size = len(train) // num_workers
    shard = train[rank * shard_size:(rank + 1) * shard_size]
    return (images[shard], labels[shard]), (images[test], labels[test])


def make_model(seed):
    tf_keras.utils.set_random_seed(seed)  # the same start for both methods
    return tf_keras.Sequential([
        tf_keras.Input((8, 8, 1)),
        tf_keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        tf_keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        tf_keras.layers.MaxPooling2D(2),
        tf_keras.layers.Flatten(),
        tf_keras.layers.Dense(10),
    ])


def compile_model(model, optimizer):
    model.compile(optimizer=optimizer, jit_compile=False, metrics=["accuracy"],
                  loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def evaluate(model, shard, test):
    train_loss, _ = model.evaluate(*shard, verbose=0)
    train_loss = float(hvd.allreduce(tf.constant(train_loss), name="eval.train_loss", op=hvd.Average))
    _, test_accuracy = model.evaluate(*test, verbose=0)
    return train_loss, float(test_accuracy)


def run_catalyst(args, shard, test):
    model = make_model(args.seed)
    optimizer = crpsgd_keras.round_optimizer(tf_keras.optimizers.SGD(args.lr, momentum=args.momentum))
    compile_model(model, optimizer)
    loop = CatalystLoop.per_epoch(len(shard[1]), args.outer)
    callback = crpsgd_keras.CatalystCallback(optimizer, GeometricSchedule(args.b1, args.rho, args.b_max), loop,
                                             args.theta, args.micro_batch_size, leftover="final_round")
    dataset = crpsgd_keras.round_dataset(*shard, callback, seed=args.seed * 7919 + hvd.rank())

    started = time.perf_counter()
    # Horovod's own callbacks work beside ours: the broadcast after the first step
    # repeats the one CatalystCallback makes before it, and the metrics are averaged.
    callbacks = [callback, hvd.callbacks.BroadcastGlobalVariablesCallback(0), hvd.callbacks.MetricAverageCallback()]
    history = model.fit(dataset, epochs=1, steps_per_epoch=callback.steps, callbacks=callbacks,
                        verbose=args.verbose if hvd.rank() == 0 else 0)
    wall = time.perf_counter() - started
    train_loss, test_accuracy = evaluate(model, shard, test)
    return {"method": "CR-PSGD-Catalyst", "epoch_logs": {k: float(v[-1]) for k, v in history.history.items()}, "gradients_per_worker": callback.accounting.samples,
            "rounds": callback.accounting.rounds, "bytes_per_worker": callback.accounting.bytes_sent,
            "train_loss": train_loss, "test_accuracy": test_accuracy, "wall_seconds": wall}


def run_psgd(args, shard, test):
    model = make_model(args.seed)
    optimizer = hvd.DistributedOptimizer(tf_keras.optimizers.SGD(args.lr, momentum=args.momentum))
    compile_model(model, optimizer)
    steps = args.outer * len(shard[1]) // args.b1
    rng = np.random.default_rng(args.seed * 7919 + hvd.rank())
    order = np.concatenate([rng.permutation(len(shard[1])) for _ in range(args.outer)])[:steps * args.b1]

    started = time.perf_counter()
    model.fit(shard[0][order], shard[1][order], batch_size=args.b1, epochs=1, shuffle=False,
              callbacks=[hvd.callbacks.BroadcastGlobalVariablesCallback(0)],
              verbose=args.verbose if hvd.rank() == 0 else 0)
    wall = time.perf_counter() - started
    train_loss, test_accuracy = evaluate(model, shard, test)
    num_params = sum(int(v.shape.num_elements()) for v in model.trainable_variables)
    return {"method": "PSGD", "gradients_per_worker": steps * args.b1, "rounds": steps,
            "bytes_per_worker": steps * round(2 * (hvd.size() - 1) * num_params * 4 / hvd.size()),
            "train_loss": train_loss, "test_accuracy": test_accuracy, "wall_seconds": wall}


def main(argv=None):
    args = parse_args(argv)
    hvd.init()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    shard, test = load_split(args.seed, hvd.rank(), hvd.size())
    results = [run_catalyst(args, shard, test), run_psgd(args, shard, test)]

    if hvd.rank() == 0:
        os.makedirs(args.out_dir, exist_ok=True)
        with open(os.path.join(args.out_dir, "results.json"), "w") as file:
            json.dump({"config": {**vars(args), "workers": hvd.size()}, "results": results}, file, indent=1)
        print(f"digits (Keras), N={hvd.size()}, K={args.outer} epochs, B1={args.b1}, rho={args.rho}, "
              f"B_max={args.b_max}, theta={args.theta}, lr={args.lr}")
        print(f"{'method':<17} {'grads/worker':>12} {'rounds':>7} {'bytes/worker':>13} {'train loss':>11} "
              f"{'test acc':>9} {'wall s':>7}")
        for r in results:
            print(f"{r['method']:<17} {r['gradients_per_worker']:>12} {r['rounds']:>7} {r['bytes_per_worker']:>13} "
                  f"{r['train_loss']:>11.4f} {r['test_accuracy']:>9.3f} {r['wall_seconds']:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
