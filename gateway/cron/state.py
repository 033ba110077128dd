"""A job's runtime state (the wire `CronJob.state`), kept apart from its definition."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

# state field → wire name; only these reach clients (the wire object is closed).
_WIRE = {
    "next_run_at_ms": "nextRunAtMs",
    "schedule_activated_at_ms": "scheduleActivatedAtMs",
    "running_at_ms": "runningAtMs",
    "last_run_at_ms": "lastRunAtMs",
    "last_run_status": "lastRunStatus",
    "last_error": "lastError",
    "last_error_reason": "lastErrorReason",
    "last_duration_ms": "lastDurationMs",
    "consecutive_errors": "consecutiveErrors",
    "consecutive_skipped": "consecutiveSkipped",
    "auto_disabled": "autoDisabled",
    "last_delivered": "lastDelivered",
    "last_delivery_status": "lastDeliveryStatus",
    "last_delivery_error": "lastDeliveryError",
    "delivery_suppression_reason": "deliverySuppressionReason",
    "last_diagnostic_summary": "lastDiagnosticSummary",
    "last_failure_alert_at_ms": "lastFailureAlertAtMs",
    "last_failure_notification_delivered": "lastFailureNotificationDelivered",
    "last_failure_notification_delivery_status": "lastFailureNotificationDeliveryStatus",
    "last_failure_notification_delivery_error": "lastFailureNotificationDeliveryError",
}
# Internal bookkeeping, stored but never sent.
_PRIVATE = {
    "running_run_id": "runningRunId",
    "running_slot_ms": "runningSlotMs",
    "schedule_errors": "scheduleErrors",
    "retries": "retries",
    "failure_incident": "failureIncident",
    "failure_notification_id": "failureNotificationId",
}
# Copied to the top level of read views (§C.2 "top-level mirrors").
_MIRRORS = {
    "nextRunAtMs": "nextRunAtMs",
    "lastRunAtMs": "lastRunAtMs",
    "lastRunStatus": "lastRunStatus",
    "lastError": "lastRunError",
    "lastDelivered": "lastDelivered",
    "lastDeliveryStatus": "lastDeliveryStatus",
    "lastDeliveryError": "lastDeliveryError",
    "deliverySuppressionReason": "deliverySuppressionReason",
}


@dataclass
class JobState:
    next_run_at_ms: int | None = None
    schedule_activated_at_ms: int | None = None
    running_at_ms: int | None = None
    last_run_at_ms: int | None = None
    last_run_status: str | None = None
    last_error: str | None = None
    last_error_reason: str | None = None
    last_duration_ms: int | None = None
    consecutive_errors: int = 0
    consecutive_skipped: int = 0
    auto_disabled: dict[str, Any] | None = None
    last_delivered: bool | None = None
    last_delivery_status: str | None = None
    last_delivery_error: str | None = None
    delivery_suppression_reason: str | None = None
    last_diagnostic_summary: str | None = None
    last_failure_alert_at_ms: int | None = None
    last_failure_notification_delivered: bool | None = None
    last_failure_notification_delivery_status: str | None = None
    last_failure_notification_delivery_error: str | None = None
    running_run_id: str | None = None
    running_slot_ms: int | None = None
    schedule_errors: int = 0
    retries: int = 0  # one-shot retries used (transient errors)
    # The failure an alert was sent for (hash of status, cause and route): the same failure
    # again is the same incident and is not alerted twice; cleared by a successful run.
    failure_incident: str | None = None
    failure_notification_id: str | None = None  # the alert whose outcome may be recorded

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for attr, name in _WIRE.items():
            value = getattr(self, attr)
            if value is not None:
                out[name] = value
        if "lastRunStatus" in out:
            out["lastStatus"] = out["lastRunStatus"]  # deprecated copy clients still read
        return out

    def stored(self) -> dict[str, Any]:
        out = self.wire()
        out.pop("lastStatus", None)
        for attr, name in _PRIVATE.items():
            value = getattr(self, attr)
            if value:
                out[name] = value
        return out

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> JobState:
        names = {**_WIRE, **_PRIVATE}
        by_wire = {v: k for k, v in names.items()}
        kwargs: dict[str, Any] = {}
        known = {f.name for f in fields(cls)}
        for key, value in data.items():
            attr = by_wire.get(key)
            if attr is not None and attr in known:
                kwargs[attr] = value
        return cls(**kwargs)


def mirrors(state: dict[str, Any]) -> dict[str, Any]:
    return {top: state[key] for key, top in _MIRRORS.items() if key in state}
