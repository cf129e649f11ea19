"""The explorer's JSON API, in process: numbers against torch, every bad input its 4xx."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient

from bnlab.web.app import create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    run = runs / "demo"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"name": "demo", "bn": "bnlab"}))
    (run / "metrics.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "epoch": e,
                    "step": 10 * e,
                    "train_loss": 1 / e,
                    "train_acc": 0.5,
                    "test_acc": 0.4,
                    "test_acc_precise": None,
                    "seconds": 1.0,
                }
            )
            + "\n"
            for e in (1, 2)
        )
    )
    (run / "activations.jsonl").write_text(
        json.dumps(
            {"epoch": 1, "step": 1, "layers": {"2": {"q15": [-1.0], "q50": [0.0], "q85": [1.0]}}}
        )
        + "\n"
    )
    return TestClient(create_app(runs))


def _values(step):
    v = step["value"]
    return torch.tensor(v["data"], dtype=torch.float64).reshape(v["shape"])


def _steps(body):
    return {s["name"]: s for s in body["steps"]}


def test_seed_example_matches_batchnorm2d(client):
    r = client.post("/api/explain", json={"gamma": [2, 5], "beta": [3, 8]})
    assert r.status_code == 200
    steps = _steps(r.json())
    torch.manual_seed(0)
    x = torch.rand(2, 2, 2, 2)
    bn = torch.nn.BatchNorm2d(2)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([2.0, 5.0]))
        bn.bias.copy_(torch.tensor([3.0, 8.0]))
        y = bn(x)
    torch.testing.assert_close(_values(steps["input"]).float(), x, rtol=0, atol=0)
    torch.testing.assert_close(_values(steps["output"]).float(), y, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(_values(steps["running_mean"]).float(), bn.running_mean)
    torch.testing.assert_close(_values(steps["running_var"]).float(), bn.running_var)
    assert steps["mean"]["reduced_axes"] == [0, 2, 3]


def test_values_eval_mode_and_fc_layout(client):
    vals = [float(v) for v in range(12)]
    r = client.post(
        "/api/explain",
        json={
            "shape": [4, 3],
            "values": vals,
            "mode": "eval",
            "running_mean": [1, 2, 3],
            "running_var": [4, 5, 6],
        },
    )
    assert r.status_code == 200
    x = torch.tensor(vals).reshape(4, 3)
    ref = F.batch_norm(x, torch.tensor([1.0, 2, 3]), torch.tensor([4.0, 5, 6]))
    torch.testing.assert_close(_values(_steps(r.json())["output"]).float(), ref)


@pytest.mark.parametrize(
    ("norm", "fn"),
    [
        ("layer", lambda x: F.layer_norm(x, x.shape[1:])),
        ("instance", lambda x: F.instance_norm(x)),
        ("group", lambda x: F.group_norm(x, 2)),
    ],
)
def test_other_norms(client, norm, fn):
    r = client.post(
        "/api/explain", json={"shape": [3, 4, 2, 2], "seed": 3, "norm": norm, "groups": 2}
    )
    assert r.status_code == 200
    g = torch.Generator().manual_seed(3)
    x = torch.rand(3, 4, 2, 2, generator=g)
    torch.testing.assert_close(
        _values(_steps(r.json())["output"]).float(), fn(x), rtol=1e-5, atol=1e-5
    )
    assert r.json()["meta"]["norm"] == norm


def test_step_feeds_a_batch_like_batchnorm2d(client):
    r = client.post(
        "/api/step",
        json={
            "shape": [2, 2, 2, 2],
            "seed": 0,
            "step": 4,
            "running_mean": [0.1, 0.2],
            "running_var": [1.0, 0.9],
        },
    )
    assert r.status_code == 200
    body = r.json()
    bn = torch.nn.BatchNorm2d(2)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([0.1, 0.2]))
        bn.running_var.copy_(torch.tensor([1.0, 0.9]))
        bn(torch.rand(2, 2, 2, 2, generator=torch.Generator().manual_seed(0 + 4 + 1)))
    assert body["step"] == 5
    torch.testing.assert_close(torch.tensor(body["running_mean"]), bn.running_mean)
    torch.testing.assert_close(torch.tensor(body["running_var"]), bn.running_var)


BAD = [
    ("too many elements", {"shape": [64, 8, 4, 4]}, "shape", "at most 4096"),
    ("rank 3", {"shape": [2, 2, 2]}, "shape", "expected (N, F) or (N, C, H, W)"),
    ("zero size", {"shape": [2, 0]}, "shape", "≥ 1"),
    ("values length", {"shape": [2, 2], "values": [1, 2, 3]}, "values", "expected 4 values"),
    ("non-finite", {"shape": [2, 2], "values": [1, 2, 3, float("inf")]}, "values", "finite"),
    ("gamma length", {"gamma": [1, 2, 3]}, "gamma", "expected 2 values"),
    ("beta length", {"beta": [1]}, "beta", "expected 2 values"),
    ("gamma nan", {"gamma": [1, float("nan")]}, "gamma", "finite"),
    ("gamma beyond float32", {"gamma": [1e39, 1]}, "gamma", "float32"),
    ("values beyond float32", {"shape": [2, 2], "values": [1e300, 0, 1, 1]}, "values", "float32"),
    ("running_mean length", {"mode": "eval", "running_mean": [0]}, "running_mean", "expected 2"),
    ("running_var negative", {"mode": "eval", "running_var": [1, -1]}, "running_var", "≥ 0"),
    ("eps zero", {"eps": 0}, "eps", "greater than 0"),
    ("eps negative", {"eps": -1}, "eps", "greater than 0"),
    ("groups", {"norm": "group", "groups": 3}, "groups", "must divide"),
    (
        "groups of 1 channel",
        {"shape": [2, 1], "norm": "group", "groups": 2},
        "groups",
        "1 channel ",
    ),
    ("gamma of 1 channel", {"shape": [4, 1], "gamma": [1, 2]}, "gamma", "expected 1 value,"),
    ("values of 1 element", {"shape": [1, 1], "values": [1, 2]}, "values", "expected 1 value "),
    ("unknown norm", {"norm": "weight"}, "norm", "batch"),
    ("unknown field", {"colour": "red"}, "colour", "not permitted"),
    ("eval for layer norm", {"norm": "layer", "mode": "eval"}, "mode", "batch norm only"),
    ("one value per channel", {"shape": [1, 2]}, "shape", "more than 1 value"),
    ("momentum", {"momentum": 2}, "momentum", "less than or equal to 1"),
    ("instance norm of (N, F)", {"shape": [4, 3], "norm": "instance"}, "norm", "(N, C, H, W)"),
]


@pytest.mark.parametrize(("case", "body", "field", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_422_naming_the_field(client, case, body, field, message):
    r = client.post(
        "/api/explain",
        content=json.dumps(body, allow_nan=True),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422, r.text
    got = r.json()
    assert got["field"] == field
    assert got["detail"].startswith(f"{field}:") and message in got["detail"]


def test_malformed_json_and_oversized_body(client):
    r = client.post(
        "/api/explain", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["field"] == "body"
    assert "malformed JSON" in r.json()["detail"]
    big = b'{"values": [' + b"1," * 600_000 + b"1]}"
    r = client.post("/api/explain", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "over 1048576 bytes" in r.json()["detail"]


def test_step_bad_input(client):
    r = client.post("/api/step", json={"running_mean": [0], "running_var": [1, 1]})
    assert r.status_code == 422 and r.json()["field"] == "running_mean"
    r = client.post("/api/step", json={"running_mean": [1e39, 0], "running_var": [1, 1]})
    assert r.status_code == 422 and r.json()["field"] == "running_mean"


def test_page_runs_and_static_assets(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "http://" not in page.text.replace("http://www.w3.org", "")
    assert "https://" not in page.text
    runs = client.get("/api/runs").json()["runs"]
    assert [r["name"] for r in runs] == ["demo"]
    assert runs[0]["bands"]["2"]["q50"] == [0.0] and len(runs[0]["metrics"]) == 2


COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "results"


def test_the_committed_runs_are_served_wherever_the_app_starts(tmp_path, monkeypatch):
    """create_app() without a runs folder serves docs/results, even started from elsewhere."""
    monkeypatch.delenv("BNLAB_RESULTS", raising=False)
    monkeypatch.chdir(tmp_path)
    body = TestClient(create_app()).get("/api/runs").json()
    want = {str(m.parent.relative_to(COMMITTED)) for m in COMMITTED.rglob("metrics.jsonl")}
    assert {"lenet", "lenet-bn", "bn-paper-fig1/with-bn", "bn-paper-fig1/without-bn"} <= want
    assert any(n.startswith("lr-sweep/") for n in want)
    assert {r["name"] for r in body["runs"]} == want
    assert Path(body["root"]).resolve() == COMMITTED.resolve()
    assert all(r["metrics"] and r["bands"] for r in body["runs"])
