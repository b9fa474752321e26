"""Helpers shared by the tests and the benchmarks: one copy of each.

A plain package, not a conftest: ``bench/`` imports it too. Fixtures stay in ``conftest.py``
files and wrap these helpers; nothing here is a fixture.

- ``ports``: free loopback ports.
- ``waiting``: ``wait_until``, the one polling loop.
- ``http``: one HTTP request on a new connection, its body decoded.
- ``services``: the environment that reaches the local Redis and Neo4j.
- ``gunicorn``: a real gunicorn master run from the repository.
- ``redis_server``: a throwaway redis-server that a test may stop and restart.
- ``balancers``: nginx and HAProxy run from the repository's example configurations.
- ``toxiproxy``: Toxiproxy, the fault injector between the service and a dependency.
- ``processes``: how each of those is started.
- ``backlog``: pending jobs loaded straight through the store, for backlog tests and benches.
"""
