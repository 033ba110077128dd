"""Reading the web for the agent: an SSRF-guarded fetcher (`ssrf`, `fetch`), readable text
from HTML (`extract`), untrusted-content wrapping (`untrusted`) and search providers
(`brave`). The tools themselves are in gateway/agents/tools/web.py."""
