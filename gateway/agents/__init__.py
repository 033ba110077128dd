"""Agent domain layer: routing, session keys, session storage, workspace, commands, runs.

Sits between the gateway core (config, RPC, channels) and the model layer (`providers/`).
"""
