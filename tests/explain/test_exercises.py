"""The tour's exercises: each links into the explorer in the state its question is about."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from bnlab.explain import exercises
from bnlab.web.schemas import ExplainRequest


def _state(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def test_links_open_the_explorer_on_its_default_address():
    for ex in exercises.EXERCISES:
        for lang in ("en", "zh"):
            url = ex.url(lang)
            assert url.startswith("http://127.0.0.1:8000/?"), url
            state = _state(url)
            assert state["lang"] == lang and state["seed"] == "0"


def test_each_linked_state_is_one_the_explorer_accepts():
    """The shapes, γ, β, ε and norms of the links pass the explorer's own request schema
    (the N = 1, H = W = 1 exercise is about the one the explorer refuses to train on)."""
    for ex in exercises.EXERCISES:
        s = _state(ex.url())
        shape = [int(v) for v in s["shape"].split(",")]
        gamma = [float(v) for v in s["gamma"].split(",")]
        assert len(gamma) == shape[1] == len(s["beta"].split(","))
        body = {
            "shape": shape,
            "seed": int(s["seed"]),
            "gamma": gamma,
            "beta": [float(v) for v in s["beta"].split(",")],
            "eps": float(s.get("eps", "1e-5")),
            "mode": s.get("mode", "train"),
            "norm": s.get("norm", "batch"),
            "groups": int(s.get("groups", "1")),
        }
        if shape == [1, 2, 1, 1]:
            continue
        ExplainRequest(**body)  # raises on a state the explorer would refuse
