"""The data layer: ``datasets`` (loading, subsets, the validation views), ``splits`` (forget
and retain sets of a scenario and seed) and ``models`` (the architectures). Imports only
``bench.core``."""
