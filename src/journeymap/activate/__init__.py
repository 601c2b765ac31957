"""Activation: send conversions back to the ad platforms' conversion APIs.

The flow is rules (which conversions go where) -> outbox (one durable row per conversion and
destination, with a stable event id) -> adapters (one per platform: request bodies and the
reading of responses) -> delivery (retries, partial failures) -> audit.
"""
