"""``make chaos``: fault injection against the whole stack, measured (see :mod:`benchmarks.chaos.run`)."""
