"""ResNet20 on CIFAR-10: CR-PSGD-Catalyst against classical parallel SGD, with the paper's settings.

Run under Horovod, one process per GPU or CPU worker, on the standard CIFAR-10
Python files that you have already downloaded and extracted (nothing is
downloaded here):

    horovodrun -np 8 -H localhost:8 python examples/torch/cifar10_catalyst.py --data-dir ~/data/cifar-10-batches-py

The defaults are the CR-PSGD paper's deep-learning run: per GPU, CR-PSGD-Catalyst
with B1 = 32, rho = 1.02, gamma = 0.1, momentum 0.9, weight decay 1e-4, one epoch
of the worker's shard per inner call and B_t capped at B_max = 512; PSGD at batch
32 with the same optimizer. As in the paper, one epoch is T = 50,000 gradients
per worker: every worker draws from all 50,000 training images in its own
random order. ``--data-per-worker shard`` gives each worker its own equal
shard instead, so an epoch is 50,000 / N gradients per worker. Training uses
random crops (4-pixel padding) and horizontal flips, and all images are
normalised with the training set's channel means and standard deviations.

The paper does not give theta. The default, 0.01, is chosen, not tuned: with
gamma = 0.1 each step pulls x towards the anchor by gamma * theta = 0.1% of
the distance, about 17% over the 190 rounds of a 50,000-sample epoch, so the
anchor damps drift within an epoch without stopping progress. It is far below
the theorem's theta > L, which would force gamma < 1/(theta + L), far smaller
than 0.1, for a network whose L is unknown.

Rank 0 writes ``results.json`` and ``loss.png`` to ``--out-dir`` and prints a table.
"""

import argparse
import logging
import sys
import time

import horovod.torch as hvd
import torch
from torch.nn import functional

from comparison import Monitor, accuracy, format_table, summarize, write_results
from comparison import run_psgd as run_psgd_loop
from crpsgd_hvd import CatalystLoop, GeometricSchedule
from crpsgd_hvd.cli import check_schedule_flags
from crpsgd_hvd.datasets import load_cifar10
from crpsgd_hvd.torch import CRPSGDCatalyst, ShardSampler, fit_catalyst
from crpsgd_hvd.torch.models import ResNet20

PAPER = {"b1": 32, "rho": 1.02, "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "b_max": 512, "psgd_batch": 32}
DEFAULT_THETA = 0.01


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True,
                        help="folder with data_batch_1..5, test_batch and batches.meta (cifar-10-batches-py)")
    parser.add_argument("--epochs", type=int, default=100,
                        help="K, outer iterations of one epoch each; also PSGD's epochs (default: 100)")
    parser.add_argument("--data-per-worker", choices=("full", "shard"), default="full",
                        help="full: every worker samples the whole training set, an epoch is 50000 gradients "
                             "per worker as in the paper; shard: each worker reads its own 1/N (default: full)")
    parser.add_argument("--method", choices=("both", "catalyst", "psgd"), default="both",
                        help="which methods to run (default: both)")
    parser.add_argument("--b1", type=int, default=PAPER["b1"], help="first per-worker batch B1 (default: 32)")
    parser.add_argument("--rho", type=float, default=PAPER["rho"], help="batch growth factor rho (default: 1.02)")
    parser.add_argument("--b-max", type=int, default=PAPER["b_max"], help="cap on the per-worker batch (default: 512)")
    parser.add_argument("--theta", type=float, default=DEFAULT_THETA,
                        help=f"proximal weight theta (default: {DEFAULT_THETA}; not given by the paper)")
    parser.add_argument("--lr", type=float, default=PAPER["lr"], help="learning rate gamma (default: 0.1)")
    parser.add_argument("--momentum", type=float, default=PAPER["momentum"], help="SGD momentum (default: 0.9)")
    parser.add_argument("--weight-decay", type=float, default=PAPER["weight_decay"],
                        help="weight decay (default: 1e-4)")
    parser.add_argument("--psgd-batch", type=int, default=PAPER["psgd_batch"],
                        help="per-worker batch of classical PSGD (default: 32)")
    parser.add_argument("--micro-batch-size", type=int, default=128,
                        help="maximum samples per forward/backward pass in CR-PSGD (default: 128)")
    parser.add_argument("--keep-optimizer-state", action="store_true",
                        help="keep momentum across outer iterations (default: clear it at each one)")
    parser.add_argument("--eval-samples", type=int, default=2048,
                        help="training images per worker on which the training loss is evaluated (default: 2048)")
    parser.add_argument("--eval-points", type=int, default=50,
                        help="training-loss evaluations along the PSGD run (default: 50); "
                             "CR-PSGD-Catalyst is evaluated after every outer iteration")
    parser.add_argument("--no-augment", action="store_true", help="train without random crops and flips")
    parser.add_argument("--seed", type=int, default=0, help="initialisation and sampling seed (default: 0)")
    parser.add_argument("--out-dir", default="runs/cifar10_catalyst",
                        help="folder for results.json and loss.png (default: runs/cifar10_catalyst)")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    check_schedule_flags(parser, args)
    return args


def load_shard(data_dir, rank, num_workers, device):
    """Return this worker's training samples and the whole test set, normalised, on ``device``.

    ``num_workers = 1`` gives every worker the whole training set.
    """
    data = load_cifar10(data_dir)
    train = torch.from_numpy(data.train_images).float() / 255.0
    mean = train.mean(dim=(0, 2, 3), keepdim=True)
    std = train.std(dim=(0, 2, 3), keepdim=True)
    shard_size = len(data.train_labels) // num_workers
    if shard_size == 0:
        raise ValueError(f"{data_dir} holds {len(data.train_labels)} training images, fewer than the "
                         f"{num_workers} workers")
    rows = slice(rank * shard_size, (rank + 1) * shard_size)
    shard = ((train[rows] - mean) / std, torch.from_numpy(data.train_labels[rows]))
    test = ((torch.from_numpy(data.test_images).float() / 255.0 - mean) / std, torch.from_numpy(data.test_labels))
    return tuple(t.to(device) for t in shard), tuple(t.to(device) for t in test)


def augment(images, generator):
    """Pad by 4 pixels, crop a random 32x32 window and flip half of the images horizontally."""
    padded = functional.pad(images, (4, 4, 4, 4))
    shifts = torch.randint(0, 9, (2,), generator=generator).tolist()
    cropped = padded[:, :, shifts[0]:shifts[0] + 32, shifts[1]:shifts[1] + 32]
    flip = torch.rand(len(images), generator=generator) < 0.5
    return torch.where(flip.to(images.device)[:, None, None, None], cropped.flip(3), cropped)


def classification_loss(model, args):
    generator = torch.Generator().manual_seed(args.seed * 104_729 + hvd.rank())

    def loss_fn(samples):
        images, labels = samples
        if not args.no_augment:
            images = augment(images, generator)
        return functional.cross_entropy(model(images), labels)
    return loss_fn


def make_model(args, device):
    torch.manual_seed(args.seed)
    return ResNet20().to(device)


def make_sgd(args, model):
    return torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)


def run_catalyst(args, shard, test, device):
    model = make_model(args, device)
    loop = CatalystLoop.per_epoch(len(shard[1]), args.epochs)
    catalyst = CRPSGDCatalyst(model, make_sgd(args, model), GeometricSchedule(args.b1, args.rho, args.b_max), loop,
                              theta=args.theta, micro_batch_size=args.micro_batch_size, leftover="final_round",
                              reset_optimizer_state=not args.keep_optimizer_state)
    sampler = ShardSampler(shard, seed=args.seed * 7919 + hvd.rank())
    monitor = Monitor(tuple(t[:args.eval_samples] for t in shard))
    monitor(model, 0, 0)

    started = time.perf_counter()
    fit_catalyst(catalyst, sampler.draw, classification_loss(model, args), progress=not args.no_progress,
                 outer_callback=lambda k, results: monitor(model, catalyst.accounting.samples,
                                                           catalyst.accounting.rounds))
    wall = time.perf_counter() - started - monitor.seconds
    return summarize("CR-PSGD-Catalyst", catalyst.accounting, monitor, wall, catalyst.catalyst_plan.num_rounds,
                     test_accuracy=accuracy(model, test))


def run_psgd(args, shard, test, device):
    model = make_model(args, device)
    optimizer = hvd.DistributedOptimizer(make_sgd(args, model), named_parameters=model.named_parameters())
    sampler = ShardSampler(shard, seed=args.seed * 7919 + hvd.rank())
    steps = args.epochs * len(shard[1]) // args.psgd_batch
    monitor = Monitor(tuple(t[:args.eval_samples] for t in shard))

    model.train()
    accounting, wall = run_psgd_loop(model, optimizer, sampler.draw, classification_loss(model, args),
                                     args.psgd_batch, steps, monitor, eval_every=max(1, steps // args.eval_points))
    return summarize("PSGD", accounting, monitor, wall, steps, test_accuracy=accuracy(model, test))


def main(argv=None):
    args = parse_args(argv)
    hvd.init()
    device = torch.device("cuda", hvd.local_rank()) if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    logging.basicConfig(level=logging.INFO if hvd.rank() == 0 else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")

    if args.data_per_worker == "full":
        shard, test = load_shard(args.data_dir, 0, 1, device)
    else:
        shard, test = load_shard(args.data_dir, hvd.rank(), hvd.size(), device)
    results = []
    if args.method in ("both", "catalyst"):
        results.append(run_catalyst(args, shard, test, device))
    if args.method in ("both", "psgd"):
        results.append(run_psgd(args, shard, test, device))

    if hvd.rank() == 0:
        config = {**vars(args), "workers": hvd.size(), "shard_size": len(shard[1]), "device": str(device)}
        title = (f"ResNet20 CIFAR-10, N={hvd.size()}, {args.epochs} epochs, B1={args.b1}, rho={args.rho}, "
                 f"B_max={args.b_max}, theta={args.theta}, lr={args.lr}")
        write_results(args.out_dir, config, results, title, format_table(results),
                      figure=None if args.no_plot else "loss.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
