"""The server runtime: serving a flow, the stop deadline, workers, metrics."""
