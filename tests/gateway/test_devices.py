"""Signed devices and device tokens on `connect` (official-clients spec §4), over real sockets."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import websockets
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway import devices
from tests.harness import TOKEN, Client, LiveGateway, connected, live_gateway

UI_SCOPES = ["operator.admin", "operator.read", "operator.write"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Device:
    """An Ed25519 identity signing connects the way the official Control UI (v2) does."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public_key = b64url(raw)
        self.id = hashlib.sha256(raw).hexdigest()

    def proof(self, nonce: str, ts: int, token: str, scopes: list[str]) -> dict[str, Any]:
        payload = "|".join(
            ["v2", self.id, "openclaw-control-ui", "webchat", "operator", ",".join(scopes),
             str(ts), token, nonce]
        )  # fmt: skip
        signature = b64url(self.key.sign(payload.encode()))
        return {
            "id": self.id,
            "publicKey": self.public_key,
            "signature": signature,
            "signedAt": ts,
            "nonce": nonce,
        }


async def signed_connect(
    live: LiveGateway,
    device: Device,
    auth: dict[str, str],
    scopes: list[str] = UI_SCOPES,
    *,
    tamper: bool = False,
) -> dict[str, Any]:
    async with websockets.connect(live.ws) as ws:
        client = Client(ws)
        challenge = (await client.recv())["payload"]
        slot = auth.get("token") or auth.get("deviceToken") or ""
        proof = device.proof(challenge["nonce"], challenge["ts"], slot, scopes)
        if tamper:
            proof["nonce"] = "not-the-challenge"
        params = {
            "minProtocol": 4,
            "maxProtocol": 4,
            "client": {"id": "openclaw-control-ui", "version": "2026.9.6", "platform": "linux",
                       "mode": "webchat"},
            "role": "operator",
            "scopes": scopes,
            "auth": auth,
            "device": proof,
        }  # fmt: skip
        return await client.request("connect", params)


async def test_device_token_is_issued_then_logs_the_device_in(tmp_path: Path) -> None:
    device = Device()
    async with live_gateway(tmp_path) as live:
        first = await signed_connect(live, device, {"token": TOKEN, "password": TOKEN})
        assert first["ok"], first
        auth = first["payload"]["auth"]
        assert auth["method"] == "token" and auth["issuedAtMs"] > 0
        assert first["payload"]["snapshot"]["authMode"] == "token"
        token = auth["deviceToken"]
        # Only a hash is on disk, in a file only we can read.
        stored = (tmp_path / "devices" / "paired.json").read_text()
        assert token not in stored and device.id in stored
        assert os.stat(tmp_path / "devices" / "paired.json").st_mode & 0o077 == 0

        again = await signed_connect(live, device, {"deviceToken": token})
        assert again["ok"], again
        assert again["payload"]["auth"]["method"] == "device-token"
        assert again["payload"]["auth"]["deviceToken"] == token
        assert again["payload"]["auth"]["scopes"] == UI_SCOPES

        async with connected(live, scopes=["operator.pairing"]) as admin:
            listed = await admin.call("device.pair.list", {})
        paired = listed["paired"]
        assert [d["deviceId"] for d in paired] == [device.id]
        assert token not in json.dumps(listed)


async def test_device_token_needs_the_key_it_was_issued_to(tmp_path: Path) -> None:
    device, thief = Device(), Device()
    async with live_gateway(tmp_path) as live:
        token = (await signed_connect(live, device, {"token": TOKEN}))["payload"]["auth"][
            "deviceToken"
        ]
        # The token with another key, with no key at all, or with a stale nonce: refused.
        stolen = await signed_connect(live, thief, {"deviceToken": token})
        assert stolen["error"]["details"]["code"] == "AUTH_DEVICE_TOKEN_MISMATCH", stolen
        async with websockets.connect(live.ws) as ws:
            client = Client(ws)
            await client.recv()
            bare = await client.request(
                "connect",
                {"minProtocol": 4, "maxProtocol": 4, "client": {"id": "x", "mode": "cli"},
                 "auth": {"deviceToken": token}},
            )  # fmt: skip
        assert bare["ok"] is False
        replay = await signed_connect(live, device, {"deviceToken": token}, tamper=True)
        assert replay["error"]["details"]["code"] == "DEVICE_AUTH_NONCE_MISMATCH", replay
        # A token can never widen the scopes it was issued with.
        reader = Device()
        issued = await signed_connect(live, reader, {"token": TOKEN}, ["operator.read"])
        read_token = issued["payload"]["auth"]["deviceToken"]
        wider = await signed_connect(
            live, reader, {"deviceToken": read_token}, ["operator.read", "operator.admin"]
        )
        assert wider["ok"] and wider["payload"]["auth"]["scopes"] == ["operator.read"]


async def test_changing_the_gateway_token_invalidates_device_tokens(tmp_path: Path) -> None:
    device = Device()
    async with live_gateway(tmp_path) as live:
        token = (await signed_connect(live, device, {"token": TOKEN}))["payload"]["auth"][
            "deviceToken"
        ]
    async with live_gateway(
        tmp_path, env={"OPENCLAW_GATEWAY_TOKEN": "a-new-secret-0123456789"}
    ) as live:
        refused = await signed_connect(live, device, {"deviceToken": token})
        assert refused["error"]["details"]["code"] == "AUTH_DEVICE_TOKEN_MISMATCH", refused


def test_tui_v3_signature_verifies() -> None:
    device = Device()
    facts = devices.SignedFacts(
        client_id="openclaw-tui",
        client_mode="ui",
        role="operator",
        scopes=("operator.admin",),
        token="secret",
        platform="Linux ",
        device_family="Linux",
    )
    proof = devices.DeviceProof.model_validate(
        {"id": device.id, "publicKey": device.public_key, "signature": "x", "signedAt": 1_000,
         "nonce": "n"}
    )  # fmt: skip
    v3 = devices.signed_payloads(proof, facts)[0]
    assert v3.endswith("|linux|linux") and v3.startswith("v3|")
    signed = proof.model_copy(update={"signature": b64url(device.key.sign(v3.encode()))})
    devices.verify_proof(signed, facts, "n", now_ms=1_500)
