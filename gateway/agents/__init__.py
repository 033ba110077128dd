"""Agents: routing, sessions, transcripts, workspace and the run queue."""
