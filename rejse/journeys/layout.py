"""Where each step of a journey's diagram goes: the console draws the definition as a flow of
boxes and arrows (SVG, server-side, no JavaScript) from these positions.

Layered, top to bottom: the trigger on top, each step one layer below the deepest step that
leads to it (the longest path from the start, over the edges that do not loop back), so a
branch's arms sit side by side and meet again below them. Within a layer the steps keep the
order of the steps leading to them (the mean position of their parents, then the order of a
parent's own edges), then the order the definition lists them in. An edge that skips layers
or loops back (to a step above it, or to itself) runs down or up its own lane right of the
boxes, so no line crosses a box. Steps the start never reaches go in the layers below the
rest, in definition order, so nothing in the definition is hidden."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

BOX_W = 230  # a step's box, in the SVG's units
BOX_H = 78
TRIGGER_H = 40
GAP_X = 36
GAP_Y = 54
MARGIN = 16
LOOP_OUT = 28  # how far right of the rightmost box the first lane runs
LANE = 14  # between two lanes

Point = tuple[float, float]


@dataclass(frozen=True)
class Box:
    id: str
    x: float  # top left corner
    y: float
    w: float
    h: float

    @property
    def top(self) -> Point:
        return (self.x + self.w / 2, self.y)

    @property
    def bottom(self) -> Point:
        return (self.x + self.w / 2, self.y + self.h)


@dataclass(frozen=True)
class Arrow:
    source: str  # a step id, or "" for the trigger
    target: str
    label: str
    points: tuple[Point, ...]  # an orthogonal polyline from the source's box to the target's
    label_at: Point  # the label's middle, just above the line where it turns to its target
    loops_back: bool


@dataclass(frozen=True)
class Layout:
    width: float
    height: float
    trigger: Box
    boxes: dict[str, Box]
    arrows: list[Arrow]


def _layers(
    start: str | None, steps: Sequence[str], edges: Mapping[str, Sequence[str]]
) -> dict[str, int]:
    """The layer of each step, 0 just below the trigger."""
    known = set(steps)
    layer: dict[str, int] = {}
    order: list[str] = []  # reverse post-order of a DFS: parents before children
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(root: str) -> None:
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, i = stack.pop()
            targets = [t for t in edges.get(node, ()) if t in known]
            if i < len(targets):
                stack.append((node, i + 1))
                nxt = targets[i]
                if nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                order.append(node)

    roots = ([start] if start in known else []) + [s for s in steps if s != start]
    offset = 0
    for root in roots:
        if root in state:
            continue
        before = len(order)
        visit(root)
        part = order[before:][::-1]
        rank = {s: n for n, s in enumerate(part)}
        for node in part:  # longest path over the forward edges, in topological order
            layer.setdefault(node, offset)
            for t in edges.get(node, ()):
                if t in rank and rank[t] > rank[node]:
                    layer[t] = max(layer.get(t, offset), layer[node] + 1)
        offset = max(layer[s] for s in part) + 1
    return layer


def layout(
    start: str | None, steps: Sequence[str], edges: Mapping[str, Sequence[tuple[str, str]]]
) -> Layout:
    """Positions for `steps` (in definition order) and their labelled `edges` (step id ->
    (label, target) in the step's own order)."""
    targets = {s: [t for _, t in edges.get(s, ())] for s in steps}
    layer = _layers(start, steps, targets)
    rows: dict[int, list[str]] = {}
    for s in steps:
        rows.setdefault(layer[s], []).append(s)
    position: dict[str, float] = {}
    for n in sorted(rows):

        def placed(s: str) -> tuple[float, tuple[float, int], int]:
            """Mean position of the placed parents, then the first parent's own edge order."""
            ins = [
                (position[p], targets[p].index(s))
                for p in steps
                if p in position and s in targets[p]
            ]
            mean = sum(x for x, _ in ins) / len(ins) if ins else float("inf")
            return (mean, min(ins, default=(float("inf"), 0)), steps.index(s))

        rows[n].sort(key=placed)
        for i, s in enumerate(rows[n]):
            position[s] = float(i)
    widest = max((len(r) for r in rows.values()), default=1)
    inner = widest * BOX_W + (widest - 1) * GAP_X
    top = MARGIN + TRIGGER_H + GAP_Y
    boxes: dict[str, Box] = {}
    for n, row in rows.items():
        row_w = len(row) * BOX_W + (len(row) - 1) * GAP_X
        left = MARGIN + (inner - row_w) / 2
        for i, s in enumerate(row):
            boxes[s] = Box(s, left + i * (BOX_W + GAP_X), top + n * (BOX_H + GAP_Y), BOX_W, BOX_H)
    trigger = Box("", MARGIN + (inner - BOX_W) / 2, MARGIN, BOX_W, TRIGGER_H)
    lanes = 0  # lines right of the boxes: edges that skip layers or loop back, one each

    def lane() -> float:
        nonlocal lanes
        lanes += 1
        return MARGIN + inner + LOOP_OUT + (lanes - 1) * LANE

    arrows: list[Arrow] = []
    if start in boxes:
        (x0, y0), (x1, y1) = trigger.bottom, boxes[start].top
        arrows.append(Arrow("", start, "", ((x0, y0), (x1, y1)), (x0, y0), False))
    for s in steps:
        for label, t in edges.get(s, ()):
            if t not in boxes:
                continue
            a, b = boxes[s], boxes[t]
            (x0, y0), (x1, y1) = a.bottom, b.top
            if layer[t] == layer[s] + 1:  # down to the target's row, across, into it
                mid = y1 - GAP_Y / 2
                points: tuple[Point, ...] = ((x0, y0), (x0, mid), (x1, mid), (x1, y1))
                at = ((x0 + x1) / 2 if x0 != x1 else x0 + 6, mid - 4)
                arrows.append(Arrow(s, t, label, points, at, False))
            elif layer[t] > layer[s]:  # skips rows: out below, down a lane, in above
                x, below, above = lane(), y0 + GAP_Y / 2, y1 - GAP_Y / 2
                points = ((x0, y0), (x0, below), (x, below), (x, above), (x1, above), (x1, y1))
                arrows.append(Arrow(s, t, label, points, ((x0 + x) / 2, below - 4), False))
            else:  # loops back: out of the right side, up a lane, into the target's right side
                x, y0, y1 = lane(), a.y + a.h * 0.65, b.y + b.h * 0.35
                points = ((a.x + a.w, y0), (x, y0), (x, y1), (b.x + b.w, y1))
                arrows.append(Arrow(s, t, label, points, ((a.x + a.w + x) / 2, y0 - 4), True))
    height = top + (max(rows, default=-1) + 1) * (BOX_H + GAP_Y) - GAP_Y + MARGIN
    width = 2 * MARGIN + inner + (LOOP_OUT + lanes * LANE if lanes else 0)
    return Layout(width, max(height, top), trigger, boxes, arrows)
