"""system.info: host and process facts for the Control UI overview (reference shape)."""

from __future__ import annotations

import os
import platform
import shutil
import socket
from typing import Any

from pydantic import BaseModel, ConfigDict

from gateway.protocol.scopes import READ
from gateway.rpc.registry import CallContext, method


class SystemInfoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _meminfo() -> tuple[int, int]:
    total = free = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                name, _, rest = line.partition(":")
                value = int(rest.split()[0]) * 1024 if rest.split() else 0
                if name == "MemTotal":
                    total = value
                elif name == "MemAvailable":
                    free = value
    except (OSError, ValueError):
        pass
    return total, free


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip() or None
    except OSError:
        pass
    return None


@method("system.info", scope=READ, params=SystemInfoParams)
async def system_info(ctx: CallContext, params: SystemInfoParams) -> dict[str, Any]:
    gateway = ctx.gateway
    total, free = _meminfo()
    uname = os.uname()
    result: dict[str, Any] = {
        "machineName": socket.gethostname(),
        "hostname": socket.gethostname(),
        "platform": uname.sysname.lower(),
        "release": uname.release,
        "arch": platform.machine(),
        "osLabel": f"{uname.sysname} {uname.release}",
        "port": gateway.settings.port,
        # The reference reports its Node version here; ours is the Python runtime.
        "nodeVersion": f"python {platform.python_version()}",
        "pid": os.getpid(),
        "processInstanceId": gateway.instance_id,
        "uptimeMs": gateway.uptime_ms,
        "cpuCount": os.cpu_count() or 1,
        "loadAverage": list(os.getloadavg()),
        "memoryTotalBytes": total,
        "memoryFreeBytes": free,
    }
    cpu = _cpu_model()
    if cpu:
        result["cpuModel"] = cpu
    try:
        disk = shutil.disk_usage(gateway.settings.state_dir)
        result.update(
            diskTotalBytes=disk.total,
            diskAvailableBytes=disk.free,
            diskPath=str(gateway.settings.state_dir),
        )
    except OSError:
        pass
    return result
