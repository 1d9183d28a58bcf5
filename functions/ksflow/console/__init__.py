"""The web console: static ES modules served by the API at `/console`, using only the public API."""
