"""Ingest: Kafka records in, the outbox relayed out, replays and the embedded broker."""
