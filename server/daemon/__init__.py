"""The shared per-workspace daemon: its endpoint, the hub that lets many clients share one
language server, the `lsp` relay and the client the CLI uses.

Modules: `paths` (where sockets, registry files and logs live), `framing` (LSP base
protocol with size caps), `hub` (many connections → one `ForgeLanguageServer`), `service`
(the daemon process), `client` (connect + authenticate + requests), `relay` (an editor's
stdio to the daemon), `spawn` (find or start the daemon for a workspace).
"""
