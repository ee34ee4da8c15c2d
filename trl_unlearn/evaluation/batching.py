"""Batches and distinct work: the plumbing under the evaluation engine.

- :func:`unique_in_order`, :func:`length_batches`, :func:`pad_batch`: de-duplication, batches of
  similar length, padding;
- :func:`map_distinct`: compute each distinct input once, longest first, and under
  ``torch.distributed`` split across processes (:func:`distributed_map`);
- :func:`is_sharded_model`, :func:`collective_mode`: a model whose forward pass is itself a
  collective (FSDP, DeepSpeed ZeRO-3) needs every rank in every forward pass, so the work is then
  computed in lock-step (every rank the same rows, ``"lockstep"``) or in equal shares
  (``"padded"``), never with each rank at its own pace;
- :func:`progress_bar`: ``tqdm`` on the main process, when asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import torch

#: ``distributed`` values of the engine functions and evaluators (``None``: this process only).
DISTRIBUTED_MODES = ("shard", "main")
#: Modes for a model whose forward pass needs every rank (see :func:`distributed_map`).
COLLECTIVE_MODES = ("lockstep", "padded")


def unique_in_order(keys: Sequence[Hashable]) -> tuple[list[int], list[int]]:
    """Positions of the first occurrence of each distinct key, and each key's slot among them.

    Returns
    -------
    first : list of int
        Indices into ``keys`` of the distinct keys, in first-seen order.
    slot : list of int
        For every input key, the index of its distinct key in ``first``.
    """
    seen: dict[Hashable, int] = {}
    first: list[int] = []
    slot: list[int] = []
    for i, key in enumerate(keys):
        if key not in seen:
            seen[key] = len(first)
            first.append(i)
        slot.append(seen[key])
    return first, slot


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Group indices into batches of similar length (longest first, so memory peaks early).

    Sorting is stable, so equal-length items keep their order and the batching is deterministic.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_batch(
    sequences: Sequence[Sequence[int]], pad_value: int, side: str = "right"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad integer sequences to the longest one; returns ``(ids, attention_mask)``."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_value, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        n = len(seq)
        if n == 0:
            continue
        span = slice(width - n, width) if side == "left" else slice(0, n)
        ids[row, span] = torch.as_tensor(list(seq), dtype=torch.long)
        mask[row, span] = 1
    return ids, mask


def progress_bar(total: int, desc: str, enabled: bool):
    """A ``tqdm`` bar over ``total`` steps, on the main process only and only when ``enabled``."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled or _dist_info()[0] != 0, leave=False, dynamic_ncols=True)


def progress_bar_iter(items: Sequence, desc: str, enabled: bool):
    """Iterate over ``items`` with a :func:`progress_bar`."""
    with progress_bar(len(items), desc, enabled) as bar:
        for item in items:
            yield item
            bar.update()


# --------------------------------------------------------------------------------------------
# distinct work, across processes
# --------------------------------------------------------------------------------------------
def _dist_info() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def distributed_map(fn: Callable[[list], list], items: Sequence, mode: str | None = "shard") -> list:
    """Apply a list-to-list ``fn`` to ``items`` across the processes of ``torch.distributed``.

    Parameters
    ----------
    fn : callable
        Maps a list of items to a list of results of the same length (pure per item).
    items : sequence
        The work, identical on every rank.
    mode : {"shard", "main", "lockstep", "padded"} or None
        ``"shard"``: rank ``r`` computes ``items[r::world]`` and the results are all-gathered.
        ``"main"``: rank 0 computes everything and broadcasts. ``None``: this process computes
        everything (no collective). Otherwise every rank must call this with the same items;
        every mode returns the full result list everywhere. For a model whose forward pass is
        itself a collective (FSDP, DeepSpeed ZeRO-3; see :func:`collective_mode`):
        ``"lockstep"``: every rank computes every item, in the same order, and rank 0's results
        are broadcast (any ``fn``: generation, chunked scoring); ``"padded"``: as ``"shard"``,
        each rank's share padded with repeats of its last item (or ``items[0]``) to the same
        length and the repeats dropped, for an ``fn`` making the same collective calls for lists
        of equal length (one forward pass per item).

    Returns
    -------
    list
        ``fn(items)`` as computed on one process.
    """
    if mode not in (*DISTRIBUTED_MODES, *COLLECTIVE_MODES, None):
        raise ValueError(f"distributed must be one of {DISTRIBUTED_MODES} or None, got {mode!r}")
    rank, world = _dist_info()
    if world == 1 or mode is None:
        return list(fn(list(items)))
    if mode in ("shard", "padded"):
        mine = list(items[rank::world])
        share = len(mine)
        if mode == "padded" and items:
            width = -(-len(items) // world)
            mine += [mine[-1] if mine else items[0]] * (width - share)
        mine = list(fn(mine))[:share]
        gathered: list = [None] * world
        torch.distributed.all_gather_object(gathered, mine)
        out: list = [None] * len(items)
        for r, part in enumerate(gathered):
            out[r::world] = part
        return out
    box = [list(fn(list(items)))] if rank == 0 or mode == "lockstep" else [None]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def is_sharded_model(model) -> bool:
    """Whether ``model``'s parameters are sharded across processes (FSDP1/FSDP2, DeepSpeed ZeRO-3),
    so that each of its forward passes is a collective every rank must join."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()) or model is None:
        return False
    from torch.distributed.fsdp import FSDPModule, FullyShardedDataParallel

    if any(isinstance(m, (FSDPModule, FullyShardedDataParallel)) for m in model.modules()):
        return True
    return any(hasattr(p, "ds_id") for p in model.parameters())  # DeepSpeed ZeRO-3 partitioned parameters


def collective_mode(mode: str | None, model) -> str | None:
    """``mode`` for work done by ``model``: ``"lockstep"`` (every rank the same rows, see
    :func:`distributed_map`) when the model is sharded and the work is split (``"shard"``) or
    done on rank 0 (``"main"``), which would leave the other ranks out of its forward passes."""
    return "lockstep" if mode in DISTRIBUTED_MODES and is_sharded_model(model) else mode


def inference_context(model):
    """``torch.inference_mode()``, or ``torch.no_grad()`` for a sharded model: FSDP2 keeps the
    buffers its all-gathers allocate, and inference tensors would break the next training step."""
    return torch.no_grad() if is_sharded_model(model) else torch.inference_mode()


def map_distinct(fn: Callable[[list[int]], list], keys: Sequence[Hashable], sizes: Sequence[int], distributed=None) -> list:
    """Results of ``fn`` for every position of ``keys``, computing each distinct key once.

    ``fn`` gets the indices (into ``keys``) of the first occurrence of each distinct key it must
    compute, longest first by ``sizes`` (similar work per shard), and returns one result per
    index; the work is spread by :func:`distributed_map` (``distributed``).
    """
    first, slot = unique_in_order(keys)
    order = sorted(first, key=lambda i: -sizes[i])
    results = dict(zip(order, distributed_map(fn, order, distributed)))
    return [results[first[s]] for s in slot]

