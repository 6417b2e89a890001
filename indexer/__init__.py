"""forge-indexer's indexing pipeline: discover → chunk → embed → store, and queries.

The public surface is small: `Workspace` (one indexed folder) and the value types in
`indexer.types`. The LSP server and the CLI use only these.
"""

from indexer.errors import ForgeError
from indexer.settings import Settings, load_settings
from indexer.workspace import Workspace

__all__ = ["ForgeError", "Settings", "Workspace", "load_settings"]
