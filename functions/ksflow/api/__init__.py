"""The HTTP API: one Lambda behind an HTTP API `$default` route; one module per URL family."""
