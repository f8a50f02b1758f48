"""Kafka consumer loops: the ingest worker and the forecast reader."""
