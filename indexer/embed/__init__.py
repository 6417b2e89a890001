"""Text to vectors: the default model (to GGUF), the llama.cpp embedder, a remote llama.cpp server."""
