"""Answers: hybrid search and its ranking, symbol search, context packing."""
