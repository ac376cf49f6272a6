"""The remote backend: ``Runvoy(server=URL, token=...)`` and every CLI command through a runvoy server.

A plugin (``runvoy_backends`` hook, decision 1501) found only when a server is configured; it speaks the
server's HTTP API with the standard library (http.client), so a client installs nothing more and
``runvoy --help`` imports none of it (decision 1517)."""
