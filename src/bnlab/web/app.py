"""``bnlab serve``: the explorer page and its JSON API (FastAPI), loopback only by default.

Every asset is served from the package (no CDN).  Bad requests get HTTP 422 naming the field,
bodies over 1 MB are refused (413) before they are parsed, and nothing returns a 500 for bad
input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from ..errors import BNLabError
from ..explain.norms import explain_norm
from ..nn import BatchNorm1d, BatchNorm2d
from .schemas import ExplainRequest, StepRequest

STATIC = Path(__file__).parent / "static"
MAX_BODY = 1 << 20  # 1 MB


class BodyLimit:
    """ASGI middleware: refuse a request body over ``limit`` bytes before anything parses it."""

    def __init__(self, app: Any, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _too_large(send, self.limit)
            return
        # Read the body first (it is small or refused), then replay it to the app.
        chunks, seen, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await _too_large(send, self.limit)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, sent = b"".join(chunks), False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _too_large(send: Any, limit: int) -> None:
    body = f'{{"detail": "request body over {limit} bytes", "field": "body"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _field_of(error: dict[str, Any]) -> str:
    loc = [str(p) for p in error.get("loc", ()) if p != "body"]
    msg = str(error.get("msg", ""))
    if msg.startswith("Value error, "):
        msg = msg.removeprefix("Value error, ")
        if ":" in msg:
            return msg.split(":", 1)[0]
    return ".".join(loc) or "body"


def _tensor(
    req: ExplainRequest | StepRequest, values: list[float] | None = None, offset: int = 0
) -> torch.Tensor:
    if values is not None:
        return torch.tensor(values, dtype=torch.float32).reshape(req.shape)
    g = torch.Generator().manual_seed(req.seed + offset)
    return torch.rand(req.shape, generator=g)


def create_app(runs_dir: str | Path | None = None) -> FastAPI:
    """The explorer app; the training view shows the runs under ``runs_dir``.

    ``None``: the committed runs, wherever the server is started and however bnlab was
    installed (``bnlab.explain.results.results_dir()``: $BNLAB_RESULTS, the checkout's
    docs/results, or the copy inside the wheel).
    """
    app = FastAPI(title="bnlab explorer", docs_url=None, redoc_url=None, openapi_url=None)
    if runs_dir is None:
        from ..explain.results import results_dir

        runs_root = results_dir()
    else:
        runs_root = Path(runs_dir)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        if first.get("type") == "json_invalid":
            detail = f"body: malformed JSON ({first.get('ctx', {}).get('error', 'cannot parse')})"
            return JSONResponse(status_code=422, content={"detail": detail, "field": "body"})
        field = _field_of(first)
        msg = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
        if not msg.startswith(field):
            msg = f"{field}: {msg}"
        return JSONResponse(status_code=422, content={"detail": msg, "field": field})

    @app.exception_handler(BNLabError)
    async def _bnlab_error(_request: Request, exc: BNLabError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc), "field": "body"})

    @app.get("/")
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.post("/api/explain")
    async def api_explain(req: ExplainRequest) -> dict[str, Any]:
        x = _tensor(req, req.values)
        c = req.channels
        kwargs: dict[str, Any] = {}
        if req.norm == "batch":
            kwargs = {
                "training": req.mode == "train",
                "momentum": req.momentum,
                "running_mean": req.running_mean or [0.0] * c,
                "running_var": req.running_var or [1.0] * c,
            }
        trace = explain_norm(
            x, req.norm, groups=req.groups, weight=req.gamma, bias=req.beta, eps=req.eps, **kwargs
        )
        return trace.to_dict()

    @app.post("/api/step")
    async def api_step(req: StepRequest) -> dict[str, Any]:
        c = req.shape[1]
        bn = (BatchNorm2d if len(req.shape) == 4 else BatchNorm1d)(c, momentum=req.momentum)
        with torch.no_grad():
            bn.running_mean.copy_(torch.tensor(req.running_mean))
            bn.running_var.copy_(torch.tensor(req.running_var))
            x = _tensor(req, offset=req.step + 1)  # a new batch each step
            bn(x)
        axes = (0, *range(2, x.dim()))
        return {
            "step": req.step + 1,
            "running_mean": bn.running_mean.tolist(),
            "running_var": bn.running_var.tolist(),
            "batch_mean": x.mean(dim=axes).tolist(),
            "batch_var": x.var(dim=axes, unbiased=False).tolist(),
            "population_mean": [0.5] * c,
            "population_var": [1 / 12] * c,
        }

    @app.get("/api/runs")
    async def api_runs() -> dict[str, Any]:
        from .runs import list_runs

        return {
            "root": str(runs_root) if runs_root else None,
            "runs": list_runs(runs_root) if runs_root else [],
        }

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return BodyLimit(app)  # type: ignore[return-value]


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    runs_dir: str | Path | None = None,
    open_browser: bool = False,
) -> None:
    """Serve the explorer; ``runs_dir``: None for the committed runs, else a folder that exists."""
    import threading
    import webbrowser

    import uvicorn

    if open_browser:
        threading.Timer(1.0, lambda: webbrowser.open(f"http://{host}:{port}/")).start()
    uvicorn.run(create_app(runs_dir), host=host, port=port, log_level="warning")
