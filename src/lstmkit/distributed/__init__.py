"""Data-parallel training on torch.distributed (gloo on CPUs, launched by torchrun).

    torchrun --nproc-per-node 2 -m lstmkit classify train reviews.csv ...
    torchrun --nproc-per-node 2 train.py          # a script whose model.fit(...) runs as usual

fit() turns distributed by itself when the environment says it runs under
torchrun (RANK and WORLD_SIZE set, WORLD_SIZE > 1), or with
fit(..., distributed=True). How it shares the work: data_parallel.py;
running it over several machines: docs/multinode.md.
"""
from .data_parallel import DataParallel, DistributedError, env_rank, init, launched

__all__ = ["DataParallel", "DistributedError", "env_rank", "init", "launched"]
