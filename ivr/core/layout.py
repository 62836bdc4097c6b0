"""What a drawing costs Graphviz, known before dot runs.

dot puts the nodes in ranks (columns, left to right) and lays every edge out as a chain of hidden
nodes, one per rank it crosses; its positioning then grows faster than the number of those nodes.
`ranks_crossed` counts them the way dot ranks a graph, closely enough to refuse a drawing that
would take dot more than a few seconds (ivr.core.graph.MAX_RANKS_CROSSED, measured by
benchmarks/graph_size.py): about 2 s at 2,000, 4 s at 2,500, 6 s at 3,000 and 17 s at 3,900,
whatever the flow's shape.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ranks_crossed"]


def ranks_crossed(edges: Iterable[tuple[str, str]]) -> int:
    """How many ranks the edges cross in all, ranked as dot ranks them: cycles broken by turning round
    the edges a depth-first search finds going back, then each node one rank after the furthest
    node before it. Self-loops cross none. Time and memory linear in the edges."""
    following: dict[str, list[str]] = {}
    for source, target in edges:
        following.setdefault(target, [])
        if source != target:
            following.setdefault(source, []).append(target)
        else:
            following.setdefault(source, [])
    forward: dict[str, list[str]] = {node: [] for node in following}
    on_path, done = set(), set()
    for root in following:
        if root in done:
            continue
        on_path.add(root)
        stack = [(root, iter(following[root]))]
        while stack:
            node, rest = stack[-1]
            target = next(rest, None)
            if target is None:
                on_path.discard(node)
                done.add(node)
                stack.pop()
            elif target in on_path:  # an edge back up the path: laid out turned round
                forward[target].append(node)
            else:
                forward[node].append(target)
                if target not in done:
                    on_path.add(target)
                    stack.append((target, iter(following[target])))
    waiting = dict.fromkeys(forward, 0)
    for targets in forward.values():
        for target in targets:
            waiting[target] += 1
    rank = dict.fromkeys(forward, 0)
    ready = [node for node, count in waiting.items() if count == 0]
    while ready:
        node = ready.pop()
        for target in forward[node]:
            rank[target] = max(rank[target], rank[node] + 1)
            waiting[target] -= 1
            if waiting[target] == 0:
                ready.append(target)
    return sum(rank[target] - rank[source] for source, targets in forward.items() for target in targets)
