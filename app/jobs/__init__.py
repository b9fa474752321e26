"""Durable simulation jobs: HTTP intake, the Redis store, and the threads that run them."""
