"""`python -m server.daemon -w PATH --background`: how `forge-indexer lsp` starts a daemon."""

import sys

from server.cli import main

if __name__ == "__main__":
    main(["daemon", *sys.argv[1:]])
