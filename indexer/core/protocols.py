"""Interfaces between pipeline stages, so each side can be swapped or faked in unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from indexer.core.errors import ForgeError

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns text into L2-normalised vectors. One instance per process owns the model."""

    @property
    def model_id(self) -> str:
        """Stable identity of the model + the settings that change vectors (for the config hash)."""

    @property
    def dim(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """Largest input the model takes, in its own tokens (prefix included)."""

    @property
    def input_tokens(self) -> int:
        """Tokens of a document the model reads (at most `max_tokens`; queries get all)."""

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as a document (document prefix included), with the model's tokenizer."""

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """(len(texts), dim) float32, normalised; the document prefix is applied here."""

    def embed_query(self, text: str) -> Vectors:
        """(dim,) float32, normalised; the query prefix is applied here."""


class EmbedInputsFailed(ForgeError):
    """Some texts of a batch could not be embedded (the embedder rejected just them).

    `vectors` has a row for every text (rows of failed texts are NaN) and `failed` maps a
    failed text's position to the reason. Phase 2 stores the others and reports the
    failed ones as file errors; their chunks stay without a vector until a later run.
    """

    def __init__(self, message: str, vectors: Vectors, failed: dict[int, str]) -> None:
        super().__init__(message)
        self.vectors = vectors
        self.failed = failed


class Cancellable(Protocol):
    """Something long work polls to stop early (indexer.workspace.CancelToken)."""

    @property
    def cancelled(self) -> bool: ...
