"""The assistant: agents wired to sessions, the run queue and the model providers."""
