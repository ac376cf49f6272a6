"""The ``[providers.template]`` section of runvoy's config file (pydantic v2, no SDK)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TemplateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state_dir: str | None = Field(
        default=None,
        max_length=4096,
        description="where task state and output live (default: RUNVOY_HOME/template)",
    )
