"""CR-PSGD against classical parallel SGD in Keras, on the CR-PSGD paper's logistic regression.

Run under Horovod, one process per worker:

    horovodrun -np 2 -H localhost:2 --gloo python examples/tf/logistic_regression.py

The problem and defaults match examples/torch/logistic_regression.py. The
default learning rate is 0.005 rather than the paper's 0.1 because, with
features from Normal(1, 4 I) in d = 500, the loss is L-smooth with L close to
126 and gamma = 0.1 makes SGD oscillate instead of descend. CR-PSGD runs through ``model.fit`` with :class:`CRPSGDCallback`; PSGD
uses Horovod's Keras ``DistributedOptimizer`` with one allreduce per step.
The final objective is the exact full objective over all workers' data.
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

from crpsgd_hvd import GeometricSchedule
from crpsgd_hvd.cli import check_schedule_flags
from crpsgd_hvd.problems import LogisticRegressionProblem


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=int, default=4000, help="T, gradients per worker (default: 4000)")
    parser.add_argument("--b1", type=int, default=2, help="first per-worker batch B1 (default: 2)")
    parser.add_argument("--rho", type=float, default=1.1, help="batch growth factor (default: 1.1)")
    parser.add_argument("--lr", type=float, default=0.005, help="learning rate gamma (default: 0.005)")
    parser.add_argument("--psgd-batch", type=int, default=2, help="per-worker batch of PSGD (default: 2)")
    parser.add_argument("--micro-batch-size", type=int, default=512,
                        help="samples per fit step in CR-PSGD (default: 512)")
    parser.add_argument("--dim", type=int, default=500, help="feature dimension d (default: 500)")
    parser.add_argument("--samples-per-worker", type=int, default=10_000, help="shard size M (default: 10000)")
    parser.add_argument("--mu", type=float, default=1e-3, help="l2 weight mu (default: 0.001)")
    parser.add_argument("--seed", type=int, default=0, help="data and sampling seed (default: 0)")
    parser.add_argument("--out-dir", default="runs/tf_logistic_regression",
                        help="folder for results.json (default: runs/tf_logistic_regression)")
    parser.add_argument("--verbose", type=int, default=1, help="Keras fit verbosity on rank 0 (default: 1)")
    args = parser.parse_args(argv)
    check_schedule_flags(parser, args)
    return args


def make_model(problem):
    # x1 = 0. The l2 term is a kernel regularizer, so Keras adds it to the loss.
    return tf_keras.Sequential([
        tf_keras.Input((problem.dim,)),
        tf_keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros",
                              kernel_regularizer=tf_keras.regularizers.L2(problem.mu / 2)),
    ])


def logistic_loss(labels, logits):
    # Keras may hand labels over as (m, 1) next to (m, 1) logits; flatten both.
    margins = -tf.reshape(tf.cast(labels, logits.dtype), [-1]) * tf.reshape(logits, [-1])
    return tf.reduce_mean(tf.nn.softplus(margins))


def full_objective(model, problem, features, labels):
    """Return f(x) over every worker's shard: the mean of the shard means plus the l2 term."""
    x = model.get_weights()[0].reshape(-1).astype(np.float64)
    local = problem.local_loss(x, features.astype(np.float64), labels.astype(np.float64))
    return float(hvd.allreduce(tf.constant(local), name="eval.objective", op=hvd.Average)) + problem.regularizer(x)


def run_crpsgd(args, problem, features, labels):
    model = make_model(problem)
    optimizer = crpsgd_keras.round_optimizer(tf_keras.optimizers.SGD(args.lr))
    model.compile(optimizer=optimizer, loss=logistic_loss, jit_compile=False)
    callback = crpsgd_keras.CRPSGDCallback(optimizer, GeometricSchedule(args.b1, args.rho), args.budget,
                                           args.micro_batch_size)
    dataset = crpsgd_keras.round_dataset(features, labels, callback, seed=args.seed * 7919 + hvd.rank())

    started = time.perf_counter()
    history = model.fit(dataset, epochs=1, steps_per_epoch=callback.steps, callbacks=[callback],
                        verbose=args.verbose if hvd.rank() == 0 else 0)
    wall = time.perf_counter() - started
    return {"method": "CR-PSGD", "gradients_per_worker": callback.accounting.samples,
            "rounds": callback.accounting.rounds, "optimizer_iterations": int(optimizer.iterations.numpy()),
            "bytes_per_worker": callback.accounting.bytes_sent,
            "final_objective": full_objective(model, problem, features, labels), "wall_seconds": wall,
            "epoch_logs": {k: float(v[-1]) for k, v in history.history.items()}}


def run_psgd(args, problem, features, labels):
    model = make_model(problem)
    optimizer = hvd.DistributedOptimizer(tf_keras.optimizers.SGD(args.lr))
    model.compile(optimizer=optimizer, loss=logistic_loss, jit_compile=False)
    steps = args.budget // args.psgd_batch
    rng = np.random.default_rng(args.seed * 7919 + hvd.rank())
    order = np.concatenate([rng.permutation(len(features)) for _ in range(-(-args.budget // len(features)))])
    dataset = tf.data.Dataset.from_tensor_slices((features[order[:args.budget]], labels[order[:args.budget]]))

    started = time.perf_counter()
    model.fit(dataset.batch(args.psgd_batch), epochs=1, steps_per_epoch=steps,
              callbacks=[hvd.callbacks.BroadcastGlobalVariablesCallback(0)],
              verbose=args.verbose if hvd.rank() == 0 else 0)
    wall = time.perf_counter() - started
    payload = problem.dim * 4
    return {"method": "PSGD", "gradients_per_worker": steps * args.psgd_batch, "rounds": steps,
            "optimizer_iterations": int(optimizer.iterations.numpy()),
            "bytes_per_worker": steps * round(2 * (hvd.size() - 1) * payload / hvd.size()),
            "final_objective": full_objective(model, problem, features, labels), "wall_seconds": wall}


def main(argv=None):
    args = parse_args(argv)
    hvd.init()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    problem = LogisticRegressionProblem(args.dim, args.samples_per_worker, args.mu, args.seed)
    features, labels = (a.astype(np.float32) for a in problem.shard(hvd.rank()))
    results = [run_crpsgd(args, problem, features, labels), run_psgd(args, problem, features, labels)]

    if hvd.rank() == 0:
        os.makedirs(args.out_dir, exist_ok=True)
        with open(os.path.join(args.out_dir, "results.json"), "w") as file:
            json.dump({"config": {**vars(args), "workers": hvd.size()}, "results": results}, file, indent=1)
        print(f"logistic regression (Keras), N={hvd.size()}, d={args.dim}, T={args.budget}, B1={args.b1}, "
              f"rho={args.rho}, lr={args.lr}")
        print(f"{'method':<8} {'grads/worker':>12} {'rounds':>7} {'iterations':>10} {'bytes/worker':>13} "
              f"{'final objective':>16} {'wall s':>7}")
        for r in results:
            print(f"{r['method']:<8} {r['gradients_per_worker']:>12} {r['rounds']:>7} "
                  f"{r['optimizer_iterations']:>10} {r['bytes_per_worker']:>13} "
                  f"{r['final_objective']:>16.6f} {r['wall_seconds']:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
