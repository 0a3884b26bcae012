"""The diagram's layout: layers by the longest path from the start, a branch's arms side by
side, lines that skip rows or loop back on lanes right of the boxes, no box on another, and
every step placed (the unreachable ones below the rest)."""

from __future__ import annotations

from itertools import combinations

from rejse.journeys.layout import BOX_H, Layout, layout


def _overlap(a, b) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def _check(flow: Layout) -> None:
    boxes = [flow.trigger, *flow.boxes.values()]
    for a, b in combinations(boxes, 2):
        assert not _overlap(a, b), (a, b)
    for box in boxes:
        assert box.x >= 0
        assert box.y >= 0
        assert box.x + box.w <= flow.width
        assert box.y + box.h <= flow.height
    for arrow in flow.arrows:  # orthogonal segments, inside the picture
        for (x0, y0), (x1, y1) in zip(arrow.points, arrow.points[1:], strict=False):
            assert x0 == x1 or y0 == y1
            assert min(x0, x1) >= 0
            assert max(x0, x1) <= flow.width
        lane = [x for x, _ in arrow.points if x > max(b.x + b.w for b in boxes)]
        assert bool(lane) == (arrow.loops_back or len(arrow.points) == 6)


def test_a_line_of_steps_goes_down_one_row_each():
    steps = ["wait_1d", "reminder_1", "wait_2d", "reminder_2"]
    flow = layout("wait_1d", steps, {a: [("", b)] for a, b in zip(steps, steps[1:], strict=False)})
    _check(flow)
    ys = [flow.boxes[s].y for s in steps]
    assert ys == sorted(ys)
    assert len(set(ys)) == 4
    assert len({flow.boxes[s].x for s in steps}) == 1
    first = flow.arrows[0]
    assert (first.source, first.target) == ("", "wait_1d")
    assert first.points[0] == flow.trigger.bottom
    assert first.points[-1] == flow.boxes["wait_1d"].top


def test_a_branch_puts_its_arms_side_by_side_and_they_meet_below():
    edges = {
        "check": [("vip", "vip_mail"), ("else", "plain_mail")],
        "vip_mail": [("", "done")],
        "plain_mail": [("", "done")],
    }
    flow = layout("check", ["check", "plain_mail", "vip_mail", "done"], edges)
    _check(flow)
    vip, plain, done = flow.boxes["vip_mail"], flow.boxes["plain_mail"], flow.boxes["done"]
    assert vip.y == plain.y > flow.boxes["check"].y
    assert vip.x < plain.x  # the order of the branch's own edges, not of the definition
    assert done.y > vip.y
    assert {a.label for a in flow.arrows if a.source == "check"} == {"vip", "else"}


def test_an_edge_that_skips_rows_runs_down_a_lane():
    edges = {
        "wait": [("on event", "exit"), ("on timeout", "remind")],
        "remind": [("", "exit")],
    }
    flow = layout("wait", ["wait", "remind", "exit"], edges)
    _check(flow)
    skip = next(a for a in flow.arrows if a.label == "on event")
    assert len(skip.points) == 6
    assert skip.points[-1] == flow.boxes["exit"].top
    assert flow.boxes["exit"].y == flow.boxes["remind"].y + BOX_H + 54


def test_a_loop_goes_back_up_and_every_step_is_placed():
    edges = {"a": [("", "b")], "b": [("again", "a")], "lonely": [("", "lonely")]}
    flow = layout("a", ["a", "b", "lonely"], edges)
    _check(flow)
    back = {(a.source, a.target) for a in flow.arrows if a.loops_back}
    assert back == {("b", "a"), ("lonely", "lonely")}
    assert flow.boxes["lonely"].y > flow.boxes["b"].y  # unreachable: below the rest
    assert layout("missing", [], {}).boxes == {}
