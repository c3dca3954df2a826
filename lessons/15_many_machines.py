"""Lesson 15 - Training on many machines.

Data parallelism, as PyTorch's DistributedDataParallel and tinycnn.distributed do it: every
process (a *rank*) holds the whole model and takes its share of each batch; the ranks
average their gradients with an *all-reduce*, then all take the same optimizer step. Why
averaging gradients is exact, the ring algorithm that MPI and NCCL run, and what it costs.

Runs alone (the ranks are simulated in one process), and for real with two processes:

    mpiexec -n 2 python lessons/15_many_machines.py --quick
"""

# ---------------------------------------------------------------------------------------
# One process computes g = dL/dw for a batch of B images, L the mean loss. Split the batch
# into N shares of n_r images; rank r computes g_r, the gradient of the mean loss over
# its share. Because a mean of means, weighted by size, is the mean:
#
#       g = sum over r of (n_r / B) * g_r        (= the plain average when shares are equal)
#
# So N ranks that add up their weighted gradients (the all-reduce) and step with the sum
# take exactly the step one process would take - only each did 1/N of the work.
# ---------------------------------------------------------------------------------------

import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tinycnn  # noqa: E402
from tinycnn import distributed as dist  # noqa: E402
from tinycnn import models, optim  # noqa: E402
from tinycnn.data import DataLoader, Shapes  # noqa: E402
from tinycnn.functional import cross_entropy  # noqa: E402
from lesson_utils import Lesson  # noqa: E402

group = dist.init()   # a world of one unless mpiexec started us
leader = group.rank == 0
say = print if leader else (lambda *a, **k: None)
lesson = Lesson(__file__, __doc__)
started = time.perf_counter()
say(f"this process: {group.describe()}")

# ---------------------------------------------------------------------------------------
# 1. Averaging gradients is exact (simulated ranks, one process)
# ---------------------------------------------------------------------------------------
images = Shapes(train=True, n=lesson.pick(quick=96, default=384, full=1536), seed=1)
batch = len(images)
tinycnn.manual_seed(0)
model = models.small_cnn(num_classes=6, in_channels=3, input_size=32).double()
model.eval()   # batch norm with fixed statistics: each image's loss depends on itself only


def gradients(model, start, stop):
    x = tinycnn.tensor(images.images[start:stop] / 255.0, dtype=np.float64)
    y = tinycnn.tensor(images.labels[start:stop])
    model.zero_grad()
    cross_entropy(model(x), y).backward()
    return [p.grad.numpy().copy() for p in model.parameters()]


whole = gradients(model, 0, batch)
say("\n1. the gradient of the whole batch against the weighted sum of the shares' gradients:")
for ranks in (2, 3, 4, 8):
    cuts = [batch * r // ranks for r in range(ranks + 1)]
    shares = [gradients(model, cuts[r], cuts[r + 1]) for r in range(ranks)]
    combined = [sum((cuts[r + 1] - cuts[r]) / batch * shares[r][i] for r in range(ranks)) for i in range(len(whole))]
    error = max(np.max(np.abs(c - w)) / np.max(np.abs(w)) for c, w in zip(combined, whole))
    say(f"   {ranks} ranks: largest relative difference {error:.1e}  (float64 rounding)")

# ---------------------------------------------------------------------------------------
# 2. The ring all-reduce
#
# The obvious way - everyone sends its gradient to rank 0, which adds and sends the sum
# back - makes rank 0's link carry 2 (N-1) copies: it gets slower with every rank added.
# The ring cuts each gradient into N chunks and passes chunks to the right neighbour:
#
#   reduce-scatter, N-1 steps: each rank sends one chunk and adds the one it receives;
#                   afterwards rank r holds the complete sum of chunk (r+1) mod N.
#   all-gather,     N-1 steps: the complete chunks travel once more round the ring.
#
# Each rank sends 2 (N-1) chunks of size S/N: 2 (N-1)/N x S bytes, almost 2 S whatever N.
# Time ~ 2 (N-1)/N x S / bandwidth + 2 (N-1) x latency. That is why NCCL and MPI use it
# (for large messages; trees for small ones).
# ---------------------------------------------------------------------------------------


def ring_all_reduce(vectors):
    """Sum ``vectors`` (one per rank) the way the ring does; returns (result per rank, history, floats sent)."""
    n = len(vectors)
    chunks = [np.array_split(v.astype(np.float64), n) for v in vectors]
    history, sent = [], 0
    # who has summed how many contributions into which chunk, for the figure
    counts = np.ones((n, n), dtype=int)
    history.append(counts.copy())
    for step in range(n - 1):                       # reduce-scatter
        outgoing = [(r, (r - step) % n, chunks[r][(r - step) % n].copy()) for r in range(n)]
        for r, c, data in outgoing:
            right = (r + 1) % n
            chunks[right][c] = chunks[right][c] + data
            counts[right, c] += counts[r, c]
            sent += data.size
        history.append(counts.copy())
    for step in range(n - 1):                       # all-gather
        outgoing = [(r, (r + 1 - step) % n, chunks[r][(r + 1 - step) % n].copy()) for r in range(n)]
        for r, c, data in outgoing:
            right = (r + 1) % n
            chunks[right][c] = data
            counts[right, c] = counts[r, c]
            sent += data.size
        history.append(counts.copy())
    return [np.concatenate(c) for c in chunks], history, sent


rng = np.random.default_rng(0)
ranks = 4
vectors = [rng.standard_normal(1000) for _ in range(ranks)]
results, history, sent = ring_all_reduce(vectors)
say(f"\n2. ring all-reduce on {ranks} simulated ranks, 1,000 floats each:")
say(f"   every rank ends with the sum: {all(np.allclose(r, sum(vectors)) for r in results)}")
say(f"   floats sent per rank: {sent // ranks} = 2 (N-1)/N x 1000 = {2 * (ranks - 1) * 1000 // ranks}")

if leader:
    fig, axes = plt.subplots(1, len(history), figsize=(2.0 * len(history), 2.4))
    for step, (ax, counts) in enumerate(zip(axes, history)):
        ax.imshow(counts, vmin=1, vmax=ranks, cmap="viridis")
        for r in range(ranks):
            for c in range(ranks):
                ax.text(c, r, counts[r, c], ha="center", va="center", color="w" if counts[r, c] < ranks else "k")
        ax.set_title("start" if step == 0 else f"{'scatter' if step < ranks else 'gather'} {step}", fontsize=9)
        ax.set_xticks(range(ranks))
        ax.set_yticks(range(ranks))
        ax.set_xlabel("chunk")
        if step == 0:
            ax.set_ylabel("rank")
    fig.suptitle("ring all-reduce: how many ranks' values each chunk holds (4 = the full sum)")
    fig.tight_layout()
    fig.savefig(lesson.figure("ring_steps.png"), dpi=110)
    plt.close(fig)

# what it costs: one step's gradients for two models, over links of several speeds
latency = 5e-6
sizes = {"LeNet-5": 4 * models.count_parameters(models.lenet5()),
         "ResNet-20": 4 * models.count_parameters(models.get_model("resnet20", num_classes=10))}
links = {"10 Gb/s": 10e9 / 8, "100 Gb/s": 100e9 / 8, "NVLink (~300 GB/s)": 300e9}
nodes = np.array([2, 4, 8, 16, 32, 64])
if leader:
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for (model_name, size), style in zip(sizes.items(), ("-", "--")):
        for link, bandwidth in links.items():
            ring = 2 * (nodes - 1) / nodes * size / bandwidth + 2 * (nodes - 1) * latency
            ax.plot(nodes, 1e3 * ring, style, marker="o", label=f"{model_name}, {link}")
        naive = 2 * (nodes - 1) * size / links["10 Gb/s"]
        ax.plot(nodes, 1e3 * naive, style, color="grey", label=f"{model_name}, 10 Gb/s, all through rank 0")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("ranks N")
    ax.set_ylabel("all-reduce per step (ms)")
    ax.set_title("ring: 2(N-1)/N x bytes / bandwidth + 2(N-1) x latency")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(lesson.figure("allreduce_cost.png"), dpi=110)
    plt.close(fig)
for name, size in sizes.items():
    say(f"   {name}: {size / 1e6:.2f} MB of float32 gradients per step")

# ---------------------------------------------------------------------------------------
# 3. The real thing: tinycnn.distributed (with mpiexec -n 2: two processes)
#
# DistributedDataParallel broadcasts rank 0's weights, then in every backward sends the
# gradients in a few flat buckets as soon as the autograd engine says a bucket is final
# (the all-reduce runs while the backward goes on into earlier layers). The loader's
# set_shard gives each rank its part of every batch of the same (seed, epoch) order.
# ---------------------------------------------------------------------------------------
steps_batch = 48
tinycnn.manual_seed(0)
alone = models.small_cnn(num_classes=6, in_channels=3, input_size=32)
reference = {k: v.copy() for k, v in alone.state_dict().items()}
together = models.small_cnn(num_classes=6, in_channels=3, input_size=32)
together.load_state_dict(reference)
together = dist.DistributedDataParallel(dist.SyncBatchNorm.convert_sync_batchnorm(together))


def train(model, shard):
    loader = DataLoader(images, batch_size=steps_batch, shuffle=True, seed=2)
    if shard:
        loader.set_shard(group.rank, group.size)
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for x, y in loader:
        loss = cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.state_dict()


one = train(alone, shard=False)
many = train(together, shard=True)
difference = max(np.max(np.abs(one[k] - many[k])) / (np.max(np.abs(one[k])) + 1e-12) for k in one)
say(f"\n3. {group.size} rank(s), global batch {steps_batch}, one epoch of {len(images)} images: the weights differ "
    f"from one process's by at most {difference:.1e} (float32 rounding)")
say(f"   one step sends {together.bytes_per_step:,} bytes in {len(together.buckets)} bucket(s) per rank")
if group.size == 1:
    say("   (one process: run `mpiexec -n 2 python lessons/15_many_machines.py --quick` to see two)")

say(f"\ndone in {time.perf_counter() - started:.1f}s")
if leader:
    lesson.finish()

# ---------------------------------------------------------------------------------------
# Where this lives (read these next)
#   tinycnn/distributed/data_parallel.py   DistributedDataParallel: the broadcast, the buckets,
#                                          the all-reduce started from the backward pass
#   tinycnn/distributed/process_group.py   ranks, sizes and the collective operations
#   tinycnn/distributed/mpi.py, tinycnn/distributed/nccl.py   the two transports
#   tinycnn/distributed/sync_batchnorm.py  batch norm with statistics over every rank's share
#   tinycnn/data/loader.py                 set_shard: each rank's part of the same batch order
# ---------------------------------------------------------------------------------------
#
# Questions
#   1. Two ranks hold 40 and 24 images of a batch of 64. With what weights must their mean
#      gradients be combined to equal one process's gradient?
#   2. How many bytes does each rank send in a ring all-reduce of S bytes over N ranks, and
#      why does that barely grow with N?
#   3. Why does data parallelism need the same initial weights on every rank, and how does
#      DistributedDataParallel ensure it?
#   4. Why does plain batch norm make N ranks differ from one process, and what fixes it?
#
# Answers (try first)
#   1. 40/64 and 24/64: the mean over the batch is the size-weighted mean of the shares'
#      means (a plain average only when the shares are equal).
#   2. 2 (N-1)/N x S: each of the N-1 reduce-scatter and N-1 all-gather steps sends one
#      chunk of S/N. It tends to 2 S, whatever N; only the number of latencies grows.
#   3. Each rank applies the same averaged gradient to its own copy of the weights; the
#      copies stay equal only if they start equal. DDP broadcasts rank 0's weights when
#      it wraps the model.
#   4. Each rank normalises with its own share's statistics, not the whole batch's.
#      SyncBatchNorm all-reduces the per-channel sums so every rank uses the batch's.
#
# Exercises: lessons/exercises/15_many_machines.py — check your work with: python lessons/check.py 15
