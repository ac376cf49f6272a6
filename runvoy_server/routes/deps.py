"""The routes' one dependency: the Backend of this request, i.e. the TeamBackend of its caller (H6's
``runvoy_server.deps``), typed as the Protocol so a route can do nothing a Backend does not offer."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from runvoy_core.backend import Backend
from runvoy_server.deps import team_backend

CallerBackend = Annotated[Backend, Depends(team_backend)]
