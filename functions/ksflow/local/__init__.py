"""The local stack: the real handlers and state machines on moto, served on localhost."""
