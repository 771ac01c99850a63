"""The HTTP service: Capillary's webhook in, the CLI's queries out. A thin door onto the same
application methods as the command line (``Ledger.receive``, ``Ledger.history``, `Queries`,
`Projector`); see docs/http.md.

Modules: ``config`` (settings), ``auth`` (webhook header, signatures, read token), ``writer``
(group commit), ``freshness`` (follower, read-your-writes), ``metrics``, ``service`` (one
worker's running parts and draining), ``webhooks``, ``reads``, ``operations`` (routes),
``schemas`` (OpenAPI models and examples), ``app`` (the ASGI app), ``serve`` (the command),
``protocol`` (uvicorn's HTTP protocols with connection limits and request deadlines), ``logs``
(rate-limited logging), ``supervision`` (workers end with their parent), ``threads`` (bounded
blocking calls).
"""
