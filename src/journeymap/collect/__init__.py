"""The collector: the Segment-compatible HTTP API, its durable journal and its drains."""
