"""`python -m server`: the language server on stdio."""

from server import main

raise SystemExit(main())
