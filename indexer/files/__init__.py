"""Which files are indexed: discovery, ignore rules, secret screening, git revisions."""
