"""A workflow declared with `progress="reports"`: only the client's reports (`PATCH`:
started, finished with `take`) move its graph; its requests carry identity only (a
request of an agent the reports have not started gets a reason, never an error). The
default, `progress="requests"`, is covered in test_serve_hints."""

from __future__ import annotations

import math

import pytest
from engine_helpers import make_engine
from serve_helpers import ServerThread
from tiny_models import make_tiny_model

from agentrt.serve.workflows import WorkflowBook, WorkflowError, graph_from_body

OR_BRANCHES = {"edges": [["route", "left"], ["route", "right"]]}


def _book() -> tuple[WorkflowBook, list[dict]]:
    published: list[dict] = []
    book = WorkflowBook(published.append)
    graph = graph_from_body(OR_BRANCHES)
    book.declare(graph, "w", progress="reports")
    return book, published


def test_requests_do_not_move_a_reported_graph():
    book, published = _book()
    before = published[-1]
    assert "not running" in book.request_started("w", "left")  # left is not started
    book.request_finished("w", "left")
    assert published[-1] == before
    assert book.get("w").state.running == set() and book.get("w").handing_off == []


def test_reports_move_it_with_the_branch_taken():
    book, published = _book()
    workflow = book.get("w")
    book.report(workflow, started=["route"])
    book.report(workflow, finished=[{"agent": "route", "take": ["left"]}])
    book.report(workflow, started=["left"])
    assert book.request_started("w", "left") is None  # the report came first
    book.request_finished("w", "left")
    assert workflow.state.running == {"left"}  # until the report says it finished
    assert published[-1]["left"] == 0 and math.isinf(published[-1]["right"])
    book.report(workflow, finished=["left"])
    assert workflow.state.finished


def test_an_unknown_progress_mode_is_refused():
    with pytest.raises(WorkflowError, match="progress"):
        WorkflowBook(lambda ste: None).declare(graph_from_body(OR_BRANCHES), "w", "guess")


def test_the_route_takes_the_mode_and_refuses_others(tmp_path):
    model = make_tiny_model("llama", tmp_path / "tiny")
    with ServerThread(make_engine(model)) as server:
        body = {"workflow_id": "w", "graph": OR_BRANCHES}
        bad = server.post("/v1/workflows", json={**body, "progress": "guess"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "progress"
        good = server.post("/v1/workflows", json={**body, "progress": "reports"})
        assert good.json()["progress"] == "reports"
        assert (
            server.post("/v1/workflows", json={**body, "workflow_id": "v"}).json()["progress"]
            == "requests"
        )


def test_a_finish_report_with_a_branch_ends_the_hand_off_and_a_bad_one_changes_nothing():
    book = WorkflowBook(lambda ste: None)
    book.declare(graph_from_body(OR_BRANCHES), "w")  # progress from requests
    assert book.request_started("w", "route") is None
    book.request_finished("w", "route")
    workflow = book.get("w")
    assert workflow.handing_off == ["route"]
    with pytest.raises(WorkflowError):
        book.report(workflow, finished=[{"agent": "route", "take": ["nowhere"]}])
    assert workflow.handing_off == ["route"]  # nothing applied
    book.report(workflow, finished=[{"agent": "route", "take": ["left"]}])
    assert workflow.handing_off == []
