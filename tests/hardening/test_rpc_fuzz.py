"""Random params for every registered RPC method, after auth: each call ends in a `res` frame
(ok, or a clear error naming the bad field), never a crash or a close, and a neighbouring
connection keeps working."""

from __future__ import annotations

import contextlib
import json
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from websockets.sync.client import ClientConnection, connect

import gateway.rpc  # noqa: F401  (registers the methods)
from gateway.rpc.registry import registry
from tests.hardening.fuzzcount import COUNTS
from tests.harness import LiveGateway, connect_params

EXAMPLES_PER_METHOD = 60
# Restart scheduling and writes that replace the config are exercised, but a fuzz case must
# not change what the next one runs against: these keep their params away from valid configs.
CONFIG_WRITERS = {"config.set", "config.apply", "config.patch"}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    # Lone surrogates: legal as JSON escapes, not as UTF-8 (found a dead-writer hang).
    st.sampled_from(["\ud800", "a\udfff", "\ud94f\udf0d"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "sessionKey": st.sampled_from(["main", "agent:main:main", "agent:nope:x", "", "a" * 600]),
    "key": st.sampled_from(["main", "agent:main:main", "agent:nope:x", ""]),
    "agentId": st.sampled_from(["main", "nope", "", "../../etc"]),
    "channel": st.sampled_from(["telegram", "discord", "webchat", "nope", ""]),
    "level": st.sampled_from(["debug", "info", "warn", "error", "nope"]),
}


def _typed(annotation: Any) -> st.SearchStrategy[Any]:
    """Values of roughly the declared type, so cases also get past validation."""
    text = str(annotation)
    options: list[st.SearchStrategy[Any]] = []
    if "str" in text:
        options.append(st.text(max_size=40))
    if "int" in text:
        options.append(st.integers(min_value=-5, max_value=10**7))
    if "float" in text:
        options.append(st.floats(allow_nan=False, allow_infinity=False))
    if "bool" in text:
        options.append(st.booleans())
    if "list" in text:
        options.append(st.lists(st.text(max_size=10), max_size=3))
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        options.append(params_for(annotation))
    elif origin is not None:
        for arg in typing.get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                options.append(params_for(arg))
    return st.one_of(*options) if options else json_values


def params_for(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, field in model.model_fields.items():
        alias = field.alias or name
        choices = [json_values, _typed(field.annotation)]
        if alias in PLAUSIBLE:
            choices.append(PLAUSIBLE[alias])
        optional[alias] = st.one_of(*choices)
    known = st.fixed_dictionaries({}, optional=optional)
    extra = st.dictionaries(st.text(min_size=1, max_size=12), json_values, max_size=2)
    return st.builds(lambda k, e: {**e, **k}, known, st.one_of(st.just({}), extra))


def request_params(method: str) -> st.SearchStrategy[Any]:
    spec = registry.get(method)
    assert spec is not None
    shaped = params_for(spec.params)
    if method in CONFIG_WRITERS:
        # Never a valid config: keep the gateway under test stable between cases.
        shaped = shaped.map(lambda p: {**p, "baseHash": "stale-hash"})
    return st.one_of(shaped, shaped, json_values)


def recv_res(ws: ClientConnection, req_id: str, timeout: float = 10.0) -> dict[str, Any]:
    while True:
        msg = json.loads(ws.recv(timeout=timeout))
        if msg.get("type") == "res" and msg.get("id") == req_id:
            assert isinstance(msg, dict)
            return msg


def open_client(live: LiveGateway, stack: contextlib.ExitStack) -> ClientConnection:
    ws = stack.enter_context(connect(live.ws, open_timeout=5, close_timeout=2, max_size=None))
    json.loads(ws.recv(timeout=5))
    ws.send(json.dumps({"type": "req", "id": "c", "method": "connect", "params": connect_params()}))
    assert recv_res(ws, "c")["ok"]
    return ws


@pytest.fixture(scope="module")
def clients(threaded_gateway: LiveGateway) -> Iterator[tuple[ClientConnection, ClientConnection]]:
    with contextlib.ExitStack() as stack:
        yield open_client(threaded_gateway, stack), open_client(threaded_gateway, stack)


_n = iter(range(10**9))


def check_error(method: str, params: Any, error: dict[str, Any]) -> None:
    message = str(error.get("message", ""))
    assert "failed unexpectedly" not in message, (method, params, error)
    assert error["code"] in {"INVALID_REQUEST", "NOT_FOUND", "CONFLICT", "UNAVAILABLE"}, error
    prefix = f"invalid {method} params: "
    if message.startswith(prefix):
        # "field.path: reason" for each bad field (or <params> for a non-object), or a
        # handler's own check that names the field ("requestId is required").
        detail = message[len(prefix) :]
        spec = registry.get(method)
        assert spec is not None
        names = {f.alias or n for n, f in spec.params.model_fields.items()}
        assert (": " in detail and detail.split(": ", 1)[0]) or any(n in detail for n in names), (
            message
        )


@pytest.mark.parametrize("method", registry.names())
def test_random_params_get_a_clear_answer(
    method: str, clients: tuple[ClientConnection, ClientConnection]
) -> None:
    fuzzed, neighbour = clients

    @settings(
        max_examples=EXAMPLES_PER_METHOD,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(params=request_params(method))
    def run(params: Any) -> None:
        COUNTS[f"rpc params ({len(registry.names())} methods)"] += 1
        req_id = f"f{next(_n)}"
        frame = {"type": "req", "id": req_id, "method": method, "params": params}
        fuzzed.send(json.dumps(frame))
        res = recv_res(fuzzed, req_id)
        COUNTS["  of which answered ok" if res["ok"] else "  of which refused (clear error)"] += 1
        if not res["ok"]:
            check_error(method, params, res["error"])
        probe = f"p{next(_n)}"
        neighbour.send(json.dumps({"type": "req", "id": probe, "method": "health"}))
        assert recv_res(neighbour, probe)["ok"] is True

    run()


@settings(max_examples=80, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    raw=st.one_of(
        st.text(min_size=1, max_size=200),
        json_values.map(json.dumps),
        st.dictionaries(
            st.sampled_from(["agents", "models", "session", "messages", "bindings", "bogus"]),
            json_values,
            max_size=3,
        ).map(json.dumps),
    )
)
def test_config_set_with_random_text_and_the_right_hash(
    clients: tuple[ClientConnection, ClientConnection], raw: str
) -> None:
    """Invalid text is refused naming the issues; valid text is written; never a crash."""
    fuzzed, _ = clients
    COUNTS["config.set raw text"] += 1
    req = f"g{next(_n)}"
    fuzzed.send(json.dumps({"type": "req", "id": req, "method": "config.get", "params": {}}))
    base = recv_res(fuzzed, req)["payload"]["hash"]
    req = f"s{next(_n)}"
    params = {"raw": raw, "baseHash": base}
    fuzzed.send(json.dumps({"type": "req", "id": req, "method": "config.set", "params": params}))
    res = recv_res(fuzzed, req)
    if not res["ok"]:
        check_error("config.set", params, res["error"])
        if res["error"]["message"].startswith("invalid config:"):
            assert res["error"]["details"]["code"] == "INVALID_CONFIG"
