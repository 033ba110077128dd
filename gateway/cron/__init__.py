"""The scheduler: cron jobs, reminders and heartbeats (context-and-cron.md part C)."""
