"""Ingest: the Kafka subscriber and its batch processor, the outbox relayed out, replays and the embedded broker."""
