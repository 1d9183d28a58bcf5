"""An example self-hosted runner."""
