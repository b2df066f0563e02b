"""Pass attribution, pure: which sampler runs a saved image's file holds, in what order,
and which stored pass each sampler of a replay graph gets. Prompt dicts in, ids out; no
ComfyUI, no module state, so every graph shape is unit-tested without a server
(tests/test_attribution.py).

One numbering for both sides. The save node's passes are the sampler nodes upstream of its
``images`` input, upstream first (:func:`path_nodes`): ``initial_noise``, then
``noise_<k>_node_<id>`` (:func:`pass_name`). A replay sampler with k samplers upstream of it
gets stored pass k (:func:`replay_pass`), the same count, so positions come from the
graph, never from the order calls happen in (a pass served from ComfyUI's cache shifts
nothing) and never from node ids (a re-created sampler, a pasted one or one in a subgraph,
``40:11``, is found at its place).

The seed contract of ComfyUI's ``OUTER_SAMPLE`` wrappers: the executor's arguments after
``noise, latent_image, sampler, sigmas`` are ``denoise_mask, callback, disable_pbar, seed``
(``CFGGuider.outer_sample`` in ComfyUI 0.3.x and 0.33), positionally or by keyword
(:func:`seed_of`, :func:`with_seed`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import graph

SEED_ARG = 3  # index of ``seed`` in the executor's arguments after the first four

#: is_sampler(node_id) -> whether the node samples (core classes and those seen sampling).
IsSampler = Callable[[str], bool]


def seed_of(args: tuple, kwargs: dict) -> Any:
    """The seed an OUTER_SAMPLE executor is called with (None when not given)."""
    return kwargs.get("seed", args[SEED_ARG] if len(args) > SEED_ARG else None)


def with_seed(args: tuple, kwargs: dict, seed: int) -> tuple[tuple, dict]:
    """The executor's arguments with ``seed`` in its place."""
    if len(args) > SEED_ARG:
        args = (*args[:SEED_ARG], seed, *args[SEED_ARG + 1 :])
    else:
        kwargs = {**kwargs, "seed": seed}
    return args, kwargs


def path_nodes(prompt: dict, save_id: str) -> list[str]:
    """Every node upstream of the save node's ``images`` input, in path order: upstream
    first (deepest first; ties by id, the shorter first). The file's passes are the
    sampler runs of these nodes, in this order."""
    depth = graph.upstream(prompt, save_id, ("images",))
    return sorted(depth, key=lambda n: (-depth[n], len(n), n))


def pass_name(position: int, node_id: str) -> str:
    """The latent name of the pass at ``position``: the first is ``initial_noise``."""
    return "initial_noise" if position == 0 else f"noise_{position}_node_{node_id}"


def replay_pass(
    prompt: dict,
    node_id: str,
    call: int,
    stored_ids: list[str],
    replay_id: str,
    is_sampler: IsSampler,
) -> int | None:
    """The stored pass (index into the file's passes, whose node ids are ``stored_ids``)
    that the ``call``-th sampling run of replay node ``node_id`` gets, or None if the file
    has none for it. The pass saved from the same node id when every sampler patched by
    ``replay_id`` (and this one) has one: the saved graph reloaded. Else the pass at its
    place: k samplers upstream of it (patched or not) give pass k, plus ``call`` for a
    node that sampled several times."""
    patched = [n for n in graph.downstream(prompt, replay_id) if is_sampler(n)]
    if all(n in stored_ids for n in {node_id, *patched}):
        mine = [i for i, nid in enumerate(stored_ids) if nid == node_id]
        return mine[call] if call < len(mine) else None
    k = len([n for n in graph.upstream(prompt, node_id) if is_sampler(n)]) + call
    return k if k < len(stored_ids) else None
