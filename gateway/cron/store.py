"""Durable cron storage under `<stateDir>/cron/` (§C.10).

* `jobs.json` — `{"version":1,"jobs":[definition...]}`, rewritten atomically (temp + fsync +
  rename + directory fsync) on every mutation; `jobs.json.bak` holds the same last good copy.
* `jobs-state.json` — `{"version":1,"jobs":{"<id>":{"state":{...}}}}`, rewritten after each
  run, so running 10 000 jobs never rewrites their definitions.
* `runs/<jobId>.jsonl` — one run-log entry per line, append-only, pruned to the newest 2 000
  entries and 7 days.

A file edited into garbage is never taken for an empty store: it is moved aside
(`jobs.json.corrupt-<ms>`), the error names file and line, and the last good copy is used. A
single invalid job is moved to `jobs-quarantine.json` and the rest load.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway.cron.model import JobSpec, describe, parse_spec
from gateway.cron.state import JobState

log = logging.getLogger("gateway.cron")

RUN_LOG_MAX_ENTRIES = 2000
RUN_LOG_MAX_AGE_MS = 7 * 86_400_000
# Prune a run log when it has grown this many entries past the cap (amortised rewrite).
_PRUNE_SLACK = 200


@dataclass
class Loaded:
    specs: list[JobSpec] = field(default_factory=list)
    states: dict[str, JobState] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _atomic_write(target: Path, text: str) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):
        dfd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


class StoreFileError(ValueError):
    """A store file that is not what we wrote; the message names file and line."""


def _read_json(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise StoreFileError(f"{path}:{exc.lineno}:{exc.colno}: {exc.msg}") from exc


class CronStore:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "cron"
        self.jobs_path = self.dir / "jobs.json"
        self.state_path = self.dir / "jobs-state.json"
        self.runs_dir = self.dir / "runs"
        self.quarantine_path = self.dir / "jobs-quarantine.json"
        self._appends: dict[str, int] = {}
        self._lines: dict[str, tuple[JobSpec, str]] = {}

    # --- loading -------------------------------------------------------------------------------

    def load(self) -> Loaded:
        out = Loaded()
        raw_jobs = self._load_jobs_file(out)
        seen: set[str] = set()
        bad: list[dict[str, Any]] = []
        for index, raw in enumerate(raw_jobs):
            try:
                if not isinstance(raw, dict):
                    raise StoreFileError("not an object")
                spec = parse_spec(raw)
                if spec.id is None or spec.id in seen:
                    raise StoreFileError("missing or duplicate id")
            except (ValidationError, StoreFileError) as exc:
                why = describe(exc) if isinstance(exc, ValidationError) else str(exc)
                msg = f"{self.jobs_path}: job #{index} ({_label(raw)}) quarantined: {why}"
                log.error("cron: %s", msg)
                out.problems.append(msg)
                bad.append({"job": raw, "error": why, "quarantinedAtMs": _now_ms()})
                continue
            seen.add(spec.id)
            out.specs.append(spec)
        if bad:
            self._quarantine(bad)
        out.states = self._load_states(out, seen)
        return out

    def _load_jobs_file(self, out: Loaded) -> list[Any]:
        backup = self.jobs_path.with_name("jobs.json.bak")
        for path in (self.jobs_path, backup):
            if not path.exists():
                continue
            try:
                data = _read_json(path)
                if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
                    raise StoreFileError(f'{path}:1:1: expected {{"version":1,"jobs":[...]}}')
            except (StoreFileError, OSError, UnicodeDecodeError) as exc:
                aside = path.with_name(f"{path.name}.corrupt-{_now_ms()}")
                with contextlib.suppress(OSError):
                    os.replace(path, aside)
                msg = f"cron store unreadable, kept aside as {aside.name}: {exc}"
                log.error("cron: %s", msg)
                out.problems.append(msg)
                continue
            if path is backup:
                log.warning("cron: using the last good copy %s", backup)
            jobs: list[Any] = data["jobs"]
            return jobs
        return []

    def _load_states(self, out: Loaded, ids: set[str]) -> dict[str, JobState]:
        if not self.state_path.exists():
            return {}
        try:
            data = _read_json(self.state_path)
            jobs = data.get("jobs") if isinstance(data, dict) else None
            if not isinstance(jobs, dict):
                raise StoreFileError(f'{self.state_path}:1:1: expected {{"jobs":{{...}}}}')
        except (StoreFileError, OSError, UnicodeDecodeError) as exc:
            # Runtime state is rebuildable from the schedules and the run logs.
            msg = f"cron state unreadable, recomputing next runs: {exc}"
            log.error("cron: %s", msg)
            out.problems.append(msg)
            return {}
        states: dict[str, JobState] = {}
        for job_id, entry in jobs.items():
            if job_id in ids and isinstance(entry, dict) and isinstance(entry.get("state"), dict):
                states[job_id] = JobState.from_stored(entry["state"])
        return states

    def _quarantine(self, bad: list[dict[str, Any]]) -> None:
        existing: list[Any] = []
        if self.quarantine_path.exists():
            with contextlib.suppress(StoreFileError, OSError, ValueError):
                loaded = _read_json(self.quarantine_path)
                if isinstance(loaded, list):
                    existing = loaded
        self.dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.quarantine_path, json.dumps(existing + bad, indent=2) + "\n")

    # --- saving --------------------------------------------------------------------------------

    def save_jobs(self, specs: list[JobSpec]) -> None:
        """One job per line (readable, diffable); a job's line is re-serialised only when its
        definition object changed, so rewriting 10 000 jobs is mostly string joining."""
        self.dir.mkdir(parents=True, exist_ok=True)
        lines: dict[str, tuple[JobSpec, str]] = {}
        for spec in specs:
            key = spec.id or ""
            cached = self._lines.get(key)
            if cached is None or cached[0] is not spec:
                cached = (spec, json.dumps(spec.wire(), ensure_ascii=False, separators=(",", ":")))
            lines[key] = cached
        self._lines = lines
        body = ",\n".join(line for _, line in lines.values())
        text = '{"version":1,"jobs":[\n' + body + ("\n" if body else "") + "]}\n"
        _atomic_write(self.jobs_path, text)
        _atomic_write(self.jobs_path.with_name("jobs.json.bak"), text)

    def save_states(self, states: dict[str, JobState]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        body = {"version": 1, "jobs": {i: {"state": s.stored()} for i, s in states.items()}}
        _atomic_write(self.state_path, json.dumps(body, separators=(",", ":")) + "\n")

    # --- run log -------------------------------------------------------------------------------

    def _run_path(self, job_id: str) -> Path:
        if "/" in job_id or "\\" in job_id or job_id in ("", ".", ".."):
            raise ValueError(f"invalid job id {job_id!r}")
        return self.runs_dir / f"{job_id}.jsonl"

    def append_run(self, entry: dict[str, Any]) -> None:
        job_id = str(entry["jobId"])
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        path = self._run_path(job_id)
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        count = self._appends.get(job_id, 0) + 1
        self._appends[job_id] = count
        if count >= _PRUNE_SLACK:
            self._appends[job_id] = 0
            self._prune(path)

    def _prune(self, path: Path) -> None:
        entries = list(_read_lines(path))
        cutoff = _now_ms() - RUN_LOG_MAX_AGE_MS
        kept = [e for e in entries if int(e.get("ts", 0)) >= cutoff][-RUN_LOG_MAX_ENTRIES:]
        if len(kept) != len(entries):
            _atomic_write(path, "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in kept))

    def runs(self, job_id: str) -> list[dict[str, Any]]:
        path = self._run_path(job_id)
        return list(_read_lines(path)) if path.exists() else []

    def all_runs(self) -> list[dict[str, Any]]:
        if not self.runs_dir.exists():
            return []
        out: list[dict[str, Any]] = []
        for path in self.runs_dir.glob("*.jsonl"):
            out.extend(_read_lines(path))
        return out

    def find_run(self, job_id: str, run_id: str) -> dict[str, Any] | None:
        for entry in reversed(self.runs(job_id)):
            if entry.get("runId") == run_id:
                return dict(entry)
        return None


def _read_lines(path: Path) -> Iterator[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line after a crash: the rest is still good
                if isinstance(entry, dict):
                    yield entry
    except OSError:
        return


def _label(raw: Any) -> str:
    if isinstance(raw, dict):
        return str(raw.get("id") or raw.get("name") or "?")
    return "?"


def _now_ms() -> int:
    return int(time.time() * 1000)
