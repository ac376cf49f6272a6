"""runvoy's HTTP server (extra ``runvoy[server]``): a thin FastAPI adapter over the Python API, with the team
service's authentication, limits and request ids as middleware (decisions 1501, 1513). Imported only by
``runvoy server`` and by code that hosts the app: the CLI never imports it otherwise."""
