"""Data-parallel training over MPI (CPU arrays) and NCCL (GPU arrays).

Launch N copies of a script with ``mpiexec -n N python script.py`` (or
``mpiexec -n N tinycnn train ... --distributed``); each copy is a *rank*::

    from tinycnn import distributed as dist

    group = dist.init()                                   # rank 0..N-1; a world of one without mpiexec
    model = dist.DistributedDataParallel(model)           # rank 0's weights everywhere; gradients averaged
    loader.set_shard(dist.rank(), dist.world_size())      # each rank its share of every batch
    ... the usual loop: forward, loss, backward, optimizer.step() ...

The pieces, one file each:

``process_group.py``   init, rank, world_size, all_reduce, broadcast (the group of ranks)
``mpi.py``             the collectives over mpi4py, each waited for with a deadline
``nccl.py``            the same collectives over cupy.cuda.nccl, for GPUs
``data_parallel.py``   DistributedDataParallel: gradient buckets, all-reduce overlapped with backward
``sync_batchnorm.py``  SyncBatchNorm: batch statistics over the global batch
``agreement.py``       the check that every rank runs the same configuration and model
``errors.py``          DistributedError, DistributedTimeout, RanksDisagree

Why PyTorch-style ``DistributedDataParallel`` and not a new loop: the training
loop stays the one in :mod:`tinycnn.train`; all the parallelism is in the
backward (the hooks) and in the data (the shards).
"""

from .agreement import check_ranks_agree, model_signature
from .data_parallel import DistributedDataParallel
from .errors import DistributedError, DistributedTimeout, RanksDisagree
from .process_group import (ProcessGroup, all_reduce, broadcast, group, init, is_initialized, launched_size,
                            local_rank, mpi_library, rank, world_size)
from .sync_batchnorm import SyncBatchNorm

__all__ = ["init", "is_initialized", "group", "rank", "world_size", "local_rank", "all_reduce", "broadcast",
           "ProcessGroup", "DistributedDataParallel", "SyncBatchNorm", "check_ranks_agree", "model_signature",
           "DistributedError", "DistributedTimeout", "RanksDisagree", "launched_size", "mpi_library"]
