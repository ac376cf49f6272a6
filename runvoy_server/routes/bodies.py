"""The request bodies of the run routes, as pydantic models: types and bounds for the OpenAPI schema (and the
fuzzing that reads it), descriptions taken from the accepted forms of runvoy_core.inputs. The values are then
checked by the same code a local call runs (``build_request``, the Python API's checks), so a value is
accepted or refused the same way locally, through the CLI and through the server, with the same message."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from runvoy_core import inputs

Text = Annotated[str, Field(max_length=inputs.MAX_COMMAND_CHARS)]
Name = Annotated[str, Field(min_length=1, max_length=256)]
MAX_PLAYBOOK_CHARS = 256 * 1024
"""A playbook's text; the server's body limit (``[serve] body_limit``) may refuse less."""
Duration = Annotated[
    str | float,
    Field(description="seconds, or a duration such as 90s, 10m, 2h", union_mode="left_to_right"),
]


class ResourcesBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    cpu: Annotated[str | float | None, Field(description=inputs.CPU.text)] = None
    memory: Annotated[str | int | None, Field(description=inputs.MEMORY.text)] = None
    architecture: Literal["x86_64", "arm64", "amd64", "aarch64"] | None = None
    spot: bool | None = None
    storage_gib: Annotated[int | None, Field(ge=1, le=200, description="ephemeral storage in GiB")] = None


class RunOptions(BaseModel):
    """The options of ``runvoy run`` (docs/inputs.md gives each accepted form)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    image: Annotated[str | None, Field(max_length=512, description=inputs.IMAGE.text)] = None
    env: Annotated[
        dict[
            Annotated[str, Field(max_length=256)],
            Annotated[str, Field(max_length=inputs.MAX_ENV_VALUE_CHARS)],
        ],
        Field(max_length=inputs.MAX_ITEMS, description="environment variables: " + inputs.ENV_NAME.text),
    ] = {}
    secrets: Annotated[
        list[Name], Field(max_length=inputs.MAX_ITEMS, description=inputs.SECRET_NAME.text)
    ] = []
    resources: ResourcesBody | None = None
    region: Annotated[str | None, Field(max_length=64, description=inputs.REGION.text)] = None
    timeout: Annotated[Duration | None, Field(description=inputs.RUN_TIMEOUT.text)] = None
    stop_grace: Annotated[Duration | None, Field(description=inputs.STOP_GRACE.text)] = None
    lock: Annotated[str | None, Field(max_length=128, description=inputs.LOCK_NAME.text)] = None
    on_conflict: Literal["fail", "wait", "cancel", "queue"] | None = None
    lock_timeout: Annotated[Duration | None, Field(description=inputs.LOCK_TIMEOUT.text)] = None
    lock_slots: Annotated[int | None, Field(ge=1, le=100)] = None
    labels: Annotated[
        dict[
            Annotated[str, Field(max_length=63)],
            Annotated[str, Field(max_length=inputs.MAX_LABEL_VALUE_CHARS)],
        ],
        Field(max_length=inputs.MAX_ITEMS, description="labels: " + inputs.LABEL_KEY.text),
    ] = {}
    workdir: Annotated[str | None, Field(max_length=4096, description=inputs.PATH.text)] = None
    image_check: bool = Field(
        True, description="ask the image's registry before starting (the [images] policy still applies)"
    )

    def options(self) -> dict[str, Any]:
        """The keyword options of ``Backend.run``/``submit``: only what the body gave, so the server's
        settings (default size) apply exactly as to a local call that gives nothing."""
        given = self.model_dump(exclude_unset=True, exclude=self._not_options)
        if "resources" in given:
            given["resources"] = {k: v for k, v in (given["resources"] or {}).items() if v is not None}
        return {k: v for k, v in given.items() if v is not None or k == "resources"}

    _not_options: ClassVar[set[str]] = {"image_check"}


class RunBody(RunOptions):
    """A run: exactly one of ``command`` (a shell string) or ``argv`` (the words to run without a shell), and
    the options of ``runvoy run``."""

    command: Annotated[
        str | None, Field(max_length=inputs.MAX_COMMAND_CHARS, description=inputs.COMMAND_WORD.text)
    ] = None
    argv: Annotated[list[Text] | None, Field(min_length=1, max_length=4096)] = None

    _not_options: ClassVar[set[str]] = {"image_check", "command", "argv", "detach"}

    def target(self) -> str | list[str]:
        """What ``Backend.run``/``submit`` take as their command (``build_request`` refuses both or neither)."""
        if self.argv is not None and self.command is None:
            return list(self.argv)
        return self.command if self.command is not None else ""

    def options(self) -> dict[str, Any]:
        given = super().options()
        if self.argv is not None and self.command is not None:
            given["argv"] = list(self.argv)  # refused by build_request, naming both
        return given


class StreamedRunBody(RunBody):
    detach: bool = Field(
        False,
        description="end the stream once the run has started (with its record as the end event), "
        "as `runvoy run --detach` does; lock waits and messages are streamed before it",
    )


class WaitBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    timeout: Annotated[
        float,
        Field(
            ge=0,
            le=60,
            description="seconds to wait at most in this request (a longer wait is several requests)",
        ),
    ] = 30.0


class KillBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    force: bool = Field(
        False, description="kill at once (SIGKILL / the cloud's forced stop), without the graceful stop"
    )


class ReconcileBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    dry_run: bool = Field(False, description="say what would be repaired, change nothing")


class PlaybookBody(RunOptions):
    """A playbook run: its YAML text (docs/playbooks.md) and ``run``'s options, which win over the playbook's."""

    text: Annotated[
        str, Field(min_length=1, max_length=MAX_PLAYBOOK_CHARS, description="the playbook's YAML text")
    ]
    name: Annotated[
        str | None,
        Field(max_length=128, description="the playbook's name when its text has none (a file's stem)"),
    ] = None
    source: Annotated[
        str | None, Field(max_length=4096, description="how errors name the text (a file's path)")
    ] = None
    detach: bool = Field(
        False, description="end the stream once the run has started, as `runvoy run -d -f` does"
    )

    _not_options: ClassVar[set[str]] = {"text", "name", "source", "detach"}


class ReleaseBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    force: bool = Field(False, description="release whoever holds it (the holder loses it)")
    version: Annotated[
        str | None,
        Field(
            max_length=256, description="release only if the lock is still at this version (from its status)"
        ),
    ] = None


class EstimateBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    cpu: Annotated[str, Field(max_length=32, description=inputs.CPU.text)] = "1"
    memory: Annotated[str, Field(max_length=32, description=inputs.MEMORY.text)] = "2GiB"
    duration: Annotated[str, Field(max_length=32, description=inputs.ESTIMATE_DURATION.text)] = "10m"
    provider: Annotated[str, Field(max_length=32, description="a provider that declares prices, or all")] = (
        "all"
    )
    region: Annotated[str | None, Field(max_length=64, description=inputs.REGION.text)] = None
    arch: Literal["x86_64", "amd64", "x86", "arm64", "aarch64", "arm"] = "x86_64"
    spot: bool = False
    storage_gib: Annotated[int, Field(ge=1, le=200)] = 20
    runs: Annotated[int, Field(ge=1, le=3_660_000_000)] = 1


class BudgetBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    amount: Annotated[str, Field(min_length=1, max_length=32, description=inputs.AMOUNT.text)]
    period: Literal["day", "week", "month"] = "month"
    scopes: Annotated[
        list[Annotated[str, Field(max_length=400)]], Field(max_length=16, description=inputs.SCOPE.text)
    ] = []
    alert_at: Annotated[str, Field(max_length=200, description=inputs.ALERT_AT.text)] = "50,80,100"
    enforce: bool = Field(False, description="refuse runs once the budget is spent")
    currency: Annotated[str, Field(min_length=3, max_length=3, description=inputs.CURRENCY.text)] = "USD"
