"""Typed parameters of the custom requests (`forge/*`), validated with pydantic.

camelCase on the wire, snake_case here. Unknown keys are rejected so that a typo
(`"limt": 5`) gets an error that names it instead of being silently ignored.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from indexer.core.globs import check_globs
from indexer.core.limits import MAX_RESULTS, SearchMode

P = TypeVar("P", bound="RequestParams")


class RequestParams(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    # LSP lets any request carry these; accept and ignore them.
    work_done_token: int | str | None = None
    partial_result_token: int | str | None = None


class SearchParams(RequestParams):
    """`forge/search`."""

    query: str = Field(min_length=1, max_length=4096)
    limit: int | None = Field(default=None, ge=1, le=MAX_RESULTS)
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)
    languages: list[str] | None = Field(default=None, max_length=64)
    paths: list[str] | None = Field(
        default=None, max_length=256, description="gitignore-style globs, relative to each root"
    )
    mode: SearchMode = "hybrid"

    @field_validator("paths")
    @classmethod
    def _usable_globs(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else check_globs(v)

    @field_validator("query")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()


class TextDocument(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    uri: str = Field(min_length=1)


class Position(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    line: int = Field(ge=0)
    character: int = Field(default=0, ge=0)


class ContextParams(RequestParams):
    """`forge/context`: a query, a cursor position, or both."""

    query: str | None = Field(default=None, max_length=8192)
    text_document: TextDocument | None = None
    position: Position | None = None
    budget_tokens: int | None = Field(default=None, ge=64, le=200_000)

    @model_validator(mode="after")
    def _needs_something(self) -> ContextParams:
        if not (self.query and self.query.strip()) and self.text_document is None:
            raise ValueError("give a 'query', or a 'textDocument' with a 'position', or both")
        if self.position is not None and self.text_document is None:
            raise ValueError("'position' needs a 'textDocument'")
        return self


class ReindexParams(RequestParams):
    """`forge/reindex`: one file (or folder root) by URI, or everything."""

    uri: str | None = None
    wait: bool = Field(default=False, description="answer only when the reindex has finished")
    timeout_ms: int = Field(
        default=600_000, ge=0, le=3_600_000, description="with 'wait': give up waiting after this"
    )


class StatusParams(RequestParams):
    """`forge/status` takes no parameters."""


class PauseParams(RequestParams):
    """`forge/pause` and `forge/resume` take no parameters."""


class ParamsError(ValueError):
    """Params that are not even an object."""


def parse_params(model: type[P], raw: Any) -> P:
    """Validate raw JSON params (a dict, or `None` for "no params") into `model`."""
    if raw is None:
        raw = {}
    elif hasattr(raw, "__attrs_attrs__") or not isinstance(raw, dict):
        raise ParamsError(f"expected an object with named parameters, got {type(raw).__name__}")
    return model.model_validate(raw)
