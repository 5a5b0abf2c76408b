"""The OpenAI-compatible edge `/v1`: authenticate, resolve, admit, route, log."""
