"""Preview streaming on Telegram: edits per answer and time to first visible text.

A real `python -m gateway` process with Telegram in `partial` streaming mode; the fake Bot API
and the fake model run in this process, so both are timed on one monotonic clock. The model
streams an answer word by word at a set pace (≈ 40 words/s, a brisk real model); per answer:
  first visible   model's first token -> first preview message at the fake Bot API
  streaming       the same with `streaming: off` (the whole answer after the last token)
  edits           editMessageText calls for the answer (the throttle: ~1 per second)
  messages        sendMessage calls (an answer longer than 4,000 characters continues in new
                  messages at chunk boundaries)

    .venv/bin/python bench/streaming.py [answers per mode, default 3] [words, default 600]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from _proc import ROOT, start, stop, wait_healthy

sys.path.insert(0, str(ROOT))
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import TOKEN, FakeTelegram

WORD_DELAY_S = 0.025  # 40 words per second


def answer(words: int) -> str:
    body = " ".join(f"word{i % 97}" for i in range(words))
    paragraphs = [body[i : i + 700] for i in range(0, len(body), 700)]
    return "\n\n".join(paragraphs)


async def run_mode(mode: str, runs: int, words: int) -> list[dict[str, float]]:
    tg, llm = FakeTelegram(), FakeLLM()
    await tg.start()
    await llm.start()
    state = tempfile.mkdtemp(prefix="clawgate-bench-stream-")
    config: dict[str, Any] = {
        "gateway": {"mode": "local"},
        "models": {"providers": {"openai": {"baseUrl": llm.url + "/v1", "apiKey": "sk-bench"}}},
        "agents": {"defaults": {"model": {"primary": "openai/gpt-bench"}}},
        "channels": {
            "telegram": {
                "botToken": TOKEN,
                "apiRoot": tg.url,
                "dmPolicy": "open",
                "allowFrom": ["*"],
                "streaming": mode,
            }
        },
    }
    (Path(state) / "openclaw.json").write_text(json.dumps(config))
    proc, port = start(state, {"OPENCLAW_SKIP_CHANNELS": ""})
    out: list[dict[str, float]] = []
    try:
        wait_healthy(port)
        await tg.wait_polls(1, timeout=30)
        text = answer(words)
        for run in range(runs + 1):  # run 0 warms the process up
            chat = 1000 + run
            llm.script.append({"text": text, "word_delay": WORD_DELAY_S})
            start_at, answered = len(tg.requests), len(llm.completed_at)
            tg.text_update("go", chat_id=chat, user_id=chat)

            def done(
                reqs: list[dict[str, Any]],
                chat: int = chat,
                start_at: int = start_at,
                answered: int = answered,
            ) -> bool:
                if len(llm.completed_at) <= answered:
                    return False
                return any(
                    r["method"] in ("sendMessage", "editMessageText")
                    and r["params"].get("chat_id") == str(chat)
                    and r["at"] > llm.completed_at[-1]
                    for r in reqs[start_at:]
                )

            await tg.wait_until(done, timeout=120)
            await asyncio.sleep(0.5)  # let the finalisation land
            mine = [
                r
                for r in tg.requests[start_at:]
                if r["params"].get("chat_id") == str(chat) and r["status"] == 200
            ]
            sends = [r for r in mine if r["method"] == "sendMessage"]
            edits = [r for r in mine if r["method"] == "editMessageText"]
            if run == 0:
                continue
            out.append(
                {
                    "first_visible_s": sends[0]["at"] - llm.first_token_at[-1],
                    "stream_s": llm.completed_at[-1] - llm.first_token_at[-1],
                    "edits": float(len(edits)),
                    "messages": float(len(sends)),
                }
            )
    finally:
        stop(proc)
        await tg.stop()
        await llm.stop()
    return out


def summary(mode: str, rows: list[dict[str, float]]) -> str:
    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    return (
        f"  {mode:<8} first visible text {med('first_visible_s') * 1000:7.0f} ms after the first"
        f" token (answer streams {med('stream_s'):.1f} s)   edits/answer {med('edits'):4.0f}"
        f"   messages/answer {med('messages'):.0f}"
    )


async def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    words = int(sys.argv[2]) if len(sys.argv) > 2 else 600
    print(f"Telegram preview streaming: {words}-word answers at {1 / WORD_DELAY_S:.0f} words/s,")
    print(f"median of {runs} answers per mode (a fresh gateway process per mode)")
    for mode in ("partial", "off"):
        print(summary(mode, await run_mode(mode, runs, words)))


if __name__ == "__main__":
    asyncio.run(main())
