"""Discord slash commands (channels.md §5.2): the core set, its registration and interactions.

The commands are registered with discord.py's `app_commands.CommandTree` and `tree.sync()`
(one `PUT /applications/{app}/commands`) once per client at READY, unless native commands
are off. An invocation is acknowledged at once with a deferred ("thinking…") response —
ephemeral per `slashCommand.ephemeral` — then becomes an `InboundMessage` for the pipeline,
which applies the same access policy and command authorization as typed messages. Whatever
the pipeline sends goes out through `InteractionTransport` as follow-ups of that response.

No `from __future__ import annotations` here: discord.py reads the callbacks' annotations
at runtime to build the option list.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from channels.base import OutboundTarget, SentMessage
from channels.command_auth import NOT_AUTHORIZED_REPLY
from gateway.agents.commands import NATIVE_COMMANDS

log = logging.getLogger("channels.discord")

# (interaction, command name, argument text) → handled; set by the owning channel.
SlashHandler = Callable[[discord.Interaction, str, str], Awaitable[None]]

PENDING_PAIRING_REPLY = "Your access request is waiting for the bot owner's approval."
DONE_REPLY = "✅ Done."
UNAVAILABLE_REPLY = "⚠️ This command is not available right now."
# What to say when the pipeline sent nothing (an interaction must always be answered).
FALLBACK_REPLIES = {
    "dropped": NOT_AUTHORIZED_REPLY,
    "unauthorized": NOT_AUTHORIZED_REPLY,
    "pairing": PENDING_PAIRING_REPLY,
    "turn": DONE_REPLY,
    "command": DONE_REPLY,
}
# Option name and description of the commands that take free text.
_ARGUMENTS = {
    "new": ("message", "Optional first message (or model) for the new session"),
    "reset": ("message", "Optional message to send after the reset"),
    "model": ("model", "Model to show (alias or provider/model)"),
}


class InteractionTransport:
    """`Transport` whose messages are follow-ups of one (deferred) interaction response."""

    def __init__(self, interaction: discord.Interaction, *, ephemeral: bool) -> None:
        self.interaction = interaction
        self.ephemeral = ephemeral
        self.sent: list[str] = []

    async def send_text(self, target: OutboundTarget, text: str) -> SentMessage:
        message = await self.interaction.followup.send(
            text,
            ephemeral=self.ephemeral,
            wait=True,
            # Same rule as channel replies: never ping @everyone or roles.
            allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=True),
        )
        self.sent.append(text)
        return SentMessage(message_id=str(message.id))

    async def send_typing(self, target: OutboundTarget) -> None:
        """Nothing to do: the deferred response already shows "thinking…"."""


def _command(
    name: str, description: str, handler: SlashHandler
) -> app_commands.Command[Any, ..., None]:
    argument = _ARGUMENTS.get(name)
    if argument is None:

        async def bare(interaction: discord.Interaction) -> None:
            await handler(interaction, name, "")

        return app_commands.Command(name=name, description=description, callback=bare)
    option, option_description = argument

    async def with_text(interaction: discord.Interaction, text: str | None = None) -> None:
        await handler(interaction, name, (text or "").strip())

    # One callback shape for all of them; Discord shows the option under its own name.
    callback = app_commands.describe(text=option_description)(
        app_commands.rename(text=option)(with_text)
    )
    return app_commands.Command(name=name, description=description, callback=callback)


def build_tree(client: discord.Client, handler: SlashHandler) -> app_commands.CommandTree:
    """A command tree on `client` holding the core set (`gateway.agents.commands.NATIVE_COMMANDS`)."""
    tree: app_commands.CommandTree = app_commands.CommandTree(client)
    for name, description in NATIVE_COMMANDS:
        tree.add_command(_command(name, description, handler))

    async def on_error(
        interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        log.warning("discord slash command /%s failed: %s", interaction.data, error)

    tree.on_error = on_error  # type: ignore[method-assign]
    return tree


async def sync_tree(tree: app_commands.CommandTree) -> int:
    """Register the tree's commands globally (one bulk overwrite); returns how many."""
    synced = await tree.sync()
    log.info("registered %d discord slash commands", len(synced))
    return len(synced)
