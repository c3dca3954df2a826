"""Exercises for lesson 15 - Training on many machines.

    python lessons/check.py 15

15.1  Combine the gradients of unequal shares of a batch into the whole batch's gradient.
15.2  One step of the ring all-reduce: reduce-scatter and all-gather.
"""


# ---------------------------------------------------------------------------------------
# Exercise 15.1 - combining gradients
#
# Rank r computed grads[r], the gradient of the *mean* loss over its share of sizes[r]
# images. Return the gradient of the mean loss over the whole batch (all shares together).
# The shares need not be equal (a last, smaller batch). The checker compares with the
# gradient of the whole batch computed in one go, in float64.
# ---------------------------------------------------------------------------------------
def combine_gradients(grads, sizes):
    """grads: list of arrays of one shape; sizes: list of ints -> an array of that shape."""
    raise NotImplementedError("exercise 15.1: weighted gradient average")


# ---------------------------------------------------------------------------------------
# Exercise 15.2 - the ring, one step at a time
#
# N ranks stand in a ring; each holds its vector cut into N chunks: chunks[r][c] is rank
# r's chunk c (a NumPy array). At every step, each rank sends one chunk to its right
# neighbour (r + 1) % N - all ranks at once, so compute every outgoing chunk first,
# before any rank changes its own.
#
#   reduce-scatter, step s = 0 .. N-2: rank r sends chunk (r - s) % N; the receiver *adds*
#       it to its own copy of that chunk. After N-1 steps, rank r holds the full sum of
#       chunk (r + 1) % N.
#   all-gather, step s = 0 .. N-2: rank r sends chunk (r + 1 - s) % N; the receiver
#       *replaces* its copy with it. After N-1 steps every rank holds every full sum.
#
# Write one step of each; change `chunks` in place. The checker runs the whole ring with
# your steps and also checks what each rank holds after every step.
# ---------------------------------------------------------------------------------------
def reduce_scatter_step(chunks, step):
    """chunks: list (ranks) of lists (chunks) of arrays, changed in place."""
    raise NotImplementedError("exercise 15.2: a reduce-scatter step")


def all_gather_step(chunks, step):
    """chunks: list (ranks) of lists (chunks) of arrays, changed in place."""
    raise NotImplementedError("exercise 15.2: an all-gather step")
