"""The workshop's own tooling: start Redis and daphne, run the tests.

Nothing here is part of the lesson; the step folders never import it.
"""
