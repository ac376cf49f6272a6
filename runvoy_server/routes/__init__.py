"""The API's routes (decision 1516): thin adapters from HTTP to the Backend Protocol of the request's caller.
``create_app`` includes every router of ROUTERS. Imported only by the server."""

from __future__ import annotations

from fastapi import APIRouter

from runvoy_server.routes import admin, ops, runs

ROUTERS: list[APIRouter] = [runs.router, ops.router, admin.router]
