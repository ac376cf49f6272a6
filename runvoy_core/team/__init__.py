"""The team service's logic over the store port: users, keys, roles, policies and the audit chain
(decision 1501). Nothing here knows HTTP: the server (runvoy_server) is a thin adapter over it."""
