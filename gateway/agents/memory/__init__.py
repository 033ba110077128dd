"""The agent's memory: Markdown files in the workspace and a search index over them.

`files` says which files are memory (MEMORY.md, USER.md, memory/**/*.md, configured extra
paths); `index` keeps a SQLite FTS5 index of their chunks (plus optional embeddings);
`settings` reads `memory.search` / `agents.*.memorySearch`; `flush` is the silent
"save what matters" turn run before a compaction.
"""
