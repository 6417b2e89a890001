"""Where the index lives: SQLite (the truth) and Chroma, local or remote, with damage detection and repair."""
