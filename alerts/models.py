"""Alert outbox models."""
