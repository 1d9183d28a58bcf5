"""`ksflow runs`: the runs of a tenant read and acted on from a terminal, over the public API only."""
