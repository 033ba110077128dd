"""Signed client devices and the device tokens they earn (official-clients spec §4).

The official Control UI and TUI keep an Ed25519 key pair and sign each `connect` (the
challenge nonce, their client facts and the secret they present). A device that proves its
key together with the gateway's shared secret gets a device token; later it may reconnect
with that token instead of the secret (a new browser tab, a restarted TUI) — but only with a
fresh signature from the same key, and only while the shared secret it was earned under is
unchanged. Only a hash of each token is stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.auth import CLOSE_POLICY
from gateway.protocol.errors import INVALID_REQUEST, RpcError

SIGNATURE_MAX_SKEW_MS = 120_000
TOKEN_BYTES = 32
MAX_DEVICES = 200  # oldest-seen devices are forgotten beyond this
_FILE_MODE = 0o600


class DeviceProof(BaseModel):
    """`connect.params.device` as the official clients send it."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str = Field(min_length=1, max_length=128)
    public_key: str = Field(alias="publicKey", min_length=1, max_length=256)
    signature: str = Field(min_length=1, max_length=512)
    signed_at: int = Field(alias="signedAt")
    nonce: str | None = Field(None, max_length=256)


@dataclass(frozen=True)
class SignedFacts:
    """What the client signed besides its key: the connect's client and auth facts."""

    client_id: str
    client_mode: str
    role: str
    scopes: tuple[str, ...]
    token: str  # the secret in the signature's token slot ("" when none)
    platform: str
    device_family: str


def _refuse(code: str, message: str) -> RpcError:
    return RpcError(
        INVALID_REQUEST,
        message,
        details={"code": code, "reason": message},
        close_code=CLOSE_POLICY,
    )


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def parse_proof(raw: Any) -> DeviceProof:
    try:
        return DeviceProof.model_validate(raw)
    except ValidationError as exc:
        raise _refuse("DEVICE_AUTH_INVALID", "invalid device identity in connect") from exc


def signed_payloads(proof: DeviceProof, facts: SignedFacts) -> list[str]:
    """The strings a v3 (TUI) or v2 (Control UI) client signs, newest first."""
    v2 = "|".join(
        [
            proof.id,
            facts.client_id,
            facts.client_mode,
            facts.role,
            ",".join(facts.scopes),
            str(proof.signed_at),
            facts.token,
            proof.nonce or "",
        ]
    )
    tail = f"{facts.platform.strip().lower()}|{facts.device_family.strip().lower()}"
    return [f"v3|{v2}|{tail}", f"v2|{v2}"]


def verify_proof(
    proof: DeviceProof, facts: SignedFacts, nonce: str, now_ms: int | None = None
) -> None:
    """Raise the protocol's refusal unless `proof` is a fresh signature over `facts`."""
    try:
        raw_key = _b64url_decode(proof.public_key)
    except (ValueError, TypeError) as exc:
        raise _refuse(
            "DEVICE_AUTH_PUBLIC_KEY_INVALID", "device public key is not base64url"
        ) from exc
    if hashlib.sha256(raw_key).hexdigest() != proof.id.lower():
        raise _refuse("DEVICE_AUTH_DEVICE_ID_MISMATCH", "device identity mismatch")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if abs(now - proof.signed_at) > SIGNATURE_MAX_SKEW_MS:
        raise _refuse("DEVICE_AUTH_SIGNATURE_EXPIRED", "device signature expired")
    if not proof.nonce:
        raise _refuse("DEVICE_AUTH_NONCE_REQUIRED", "device signature must include the nonce")
    if not hmac.compare_digest(proof.nonce.encode(), nonce.encode()):
        raise _refuse("DEVICE_AUTH_NONCE_MISMATCH", "device signature nonce mismatch")
    # Here, not at the top: `cryptography` costs ~9 MB of RSS (its Rust extension) and only a
    # connect with a signed device (the Control UI, the TUI) needs it.
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = Ed25519PublicKey.from_public_bytes(raw_key)
        signature = _b64url_decode(proof.signature)
    except ValueError as exc:
        raise _refuse("DEVICE_AUTH_PUBLIC_KEY_INVALID", "device public key is invalid") from exc
    for payload in signed_payloads(proof, facts):
        try:
            key.verify(signature, payload.encode("utf-8"))
            return
        except InvalidSignature:
            continue
    raise _refuse("DEVICE_AUTH_SIGNATURE_INVALID", "device signature invalid")


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def secret_generation(secret: str) -> str:
    """A stable fingerprint of the shared secret that reveals nothing about it."""
    return hmac.new(secret.encode("utf-8"), b"clawgate device tokens", "sha256").hexdigest()


@dataclass(frozen=True)
class Issued:
    token: str
    issued_at_ms: int
    scopes: tuple[str, ...]


class DeviceStore:
    """`<state>/devices/paired.json`: devices with a token, token hashes only (mode 0600)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / "devices" / "paired.json"
        self._lock = threading.Lock()

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            # A damaged file loses the device logins (they fall back to the shared secret),
            # never the gateway.
            return {}
        devices = data.get("devices") if isinstance(data, dict) else None
        if not isinstance(devices, dict):
            return {}
        return {k: v for k, v in devices.items() if isinstance(v, dict)}

    def _write(self, devices: dict[str, dict[str, Any]]) -> None:
        if len(devices) > MAX_DEVICES:
            keep = sorted(devices.values(), key=lambda d: d.get("lastSeenAtMs") or 0)[-MAX_DEVICES:]
            devices = {d["deviceId"]: d for d in keep}
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = json.dumps({"version": 1, "devices": devices}, indent=2)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".paired.", suffix=".tmp")
        try:
            os.fchmod(fd, _FILE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def issue(
        self,
        proof: DeviceProof,
        facts: SignedFacts,
        scopes: tuple[str, ...],
        generation: str,
    ) -> Issued:
        """Record the device and give it a new token (the previous one stops working)."""
        token = _b64url(secrets.token_bytes(TOKEN_BYTES))
        now = int(time.time() * 1000)
        with self._lock:
            devices = self._read()
            known = devices.get(proof.id.lower(), {})
            devices[proof.id.lower()] = {
                "deviceId": proof.id.lower(),
                "publicKey": proof.public_key,
                "clientId": facts.client_id,
                "clientMode": facts.client_mode,
                "platform": facts.platform,
                "role": facts.role,
                "scopes": list(scopes),
                "createdAtMs": known.get("createdAtMs", now),
                "approvedAtMs": known.get("approvedAtMs", now),
                "lastSeenAtMs": now,
                "lastSeenReason": "shared-secret-auth",
                "token": {
                    "hash": _hash_token(token),
                    "issuedAtMs": now,
                    "scopes": list(scopes),
                    "generation": generation,
                    "lastUsedAtMs": now,
                },
            }
            self._write(devices)
        return Issued(token=token, issued_at_ms=now, scopes=scopes)

    def redeem(self, proof: DeviceProof, token: str, generation: str) -> Issued:
        """Check a presented device token; the device key must match the one it was issued to."""
        with self._lock:
            devices = self._read()
            device = devices.get(proof.id.lower())
            record = device.get("token") if device else None
            valid = (
                device is not None
                and isinstance(record, dict)
                and device.get("publicKey") == proof.public_key
                and isinstance(record.get("hash"), str)
                and hmac.compare_digest(record["hash"], _hash_token(token))
                and hmac.compare_digest(str(record.get("generation", "")), generation)
            )
            if not valid or device is None or not isinstance(record, dict):
                raise _refuse(
                    "AUTH_DEVICE_TOKEN_MISMATCH",
                    "unauthorized: device token mismatch (reconnect with the gateway token)",
                )
            now = int(time.time() * 1000)
            device["lastSeenAtMs"] = now
            device["lastSeenReason"] = "device-token-auth"
            record["lastUsedAtMs"] = now
            self._write(devices)
            scopes = tuple(s for s in record.get("scopes", []) if isinstance(s, str))
            return Issued(
                token=token, issued_at_ms=int(record.get("issuedAtMs", now)), scopes=scopes
            )

    def token_valid(self, token: str, generation: str) -> bool:
        """Whether `token` is a device's current token (HTTP bearer use: no device proof there)."""
        digest = _hash_token(token)
        found = False
        for device in self._read().values():
            record = device.get("token")
            if not isinstance(record, dict) or not isinstance(record.get("hash"), str):
                continue
            same = hmac.compare_digest(record["hash"], digest)
            fresh = hmac.compare_digest(str(record.get("generation", "")), generation)
            found = found or (same and fresh)
        return found

    def paired(self, connected: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
        """`device.pair.list` rows: what we know of each device, never its token."""
        rows = []
        for device in self._read().values():
            record = device.get("token") if isinstance(device.get("token"), dict) else {}
            assert isinstance(record, dict)
            row = {k: v for k, v in device.items() if k != "token"}
            row["roles"] = [device.get("role", "operator")]
            row["approvedVia"] = "shared-secret"
            row["connected"] = device.get("deviceId") in connected
            row["tokens"] = [
                {
                    "role": device.get("role", "operator"),
                    "scopes": record.get("scopes", []),
                    "createdAtMs": record.get("issuedAtMs"),
                    "lastUsedAtMs": record.get("lastUsedAtMs"),
                }
            ]
            rows.append(row)
        rows.sort(key=lambda r: r.get("lastSeenAtMs") or 0, reverse=True)
        return rows
