"""The shipped workflow files are what workflows/graphs.py generates, and
each one is a complete UI graph (every link has both ends)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"
sys.path.insert(0, str(WORKFLOWS))
import graphs  # noqa: E402


@pytest.mark.parametrize("name", sorted(graphs.WORKFLOWS))
def test_workflow_file_is_up_to_date_and_consistent(name):
    path = WORKFLOWS / f"{name}.json"
    assert path.read_text() == graphs.render(name), "run: python workflows/graphs.py"
    ui = json.loads(path.read_text())
    nodes = {n["id"]: n for n in ui["nodes"]}
    for link_id, src, src_slot, dst, dst_slot, typ in ui["links"]:
        assert link_id in nodes[src]["outputs"][src_slot]["links"]
        assert nodes[dst]["inputs"][dst_slot]["link"] == link_id
        assert nodes[dst]["inputs"][dst_slot]["type"] == typ
    api = graphs.to_api(graphs.WORKFLOWS[name]())
    assert {n["type"] for n in ui["nodes"]} == {n["class_type"] for n in api.values()}
