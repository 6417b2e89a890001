"""Proof of possession for the daemon's shared endpoint.

`secret` keeps the per-workspace secret in the OS keyring (and refuses keyrings that are
only files); `proof` is the challenge-response on connect and the per-message proofs.
"""
