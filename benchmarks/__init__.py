"""Cost benchmarks: AWS round trips, state transitions and Lambda invocations per operation."""
