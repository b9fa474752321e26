"""Slates: demo data, the Neo4j repository, the HTTP routes and the simulation engine."""
