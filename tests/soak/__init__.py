"""The soak: the service under a seeded random mix of every fault we know, then checked.

``make soak`` (``python -m tests.soak``) runs, for SOAK_SECONDS (default 600):

- two instances (the production gunicorn.conf.py, two workers each) behind HAProxy running
  deploy/haproxy.cfg with only its ports moved; each reaches its own Redis through a
  Toxiproxy proxy of its own, and Neo4j through a Bolt proxy that can freeze
  (tests/support/frozen_bolt.py);
- clients submitting steadily through HAProxy, every logical submission under an
  Idempotency-Key of its own and sent again under it until it is acknowledged;
- a nemesis drawing, from the seed, one fault after another from every kind in
  ``tests/soak/nemesis.py``: worker SIGKILL, instance SIGKILL and SIGTERM with a restart,
  SIGHUP, Redis replies held, one instance cut off from Redis past its lease, Redis restarted
  and SIGKILLed (its AOF written through before every reply), Neo4j frozen;

then heals everything, waits for the queue to empty and reads every record and every log line
(``tests/soak/checker.py``). It prints the seed, the faults and the counts, and exits 1 when an
invariant broke: an acknowledged job not complete, a job completed twice or run again after it
completed, a job without an acknowledged submission, an answer from the service outside its
contract (a 5xx other than a documented 503 with Retry-After), an unexpected error in a log.
"""
