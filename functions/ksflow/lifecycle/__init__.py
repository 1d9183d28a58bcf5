"""A run's lifecycle beyond one dispatch: attempts, retries, stop, heartbeats and its event history."""
