"""Slates in Neo4j: the graph repository, demo data, read API, and the simulation engine."""
