"""Running cells: ``grid`` (which cells a config asks for, their keys and data), ``model_store``
(the original and retrained models, trained once and cached), ``cells`` (one cell: unlearn,
evaluate, record), ``results`` (run records and the tidy CSV), ``sweep`` (a whole sweep, local
or on Ray: ``ray_backend``) and ``cli`` (options the commands share). Imports every layer
below it; the tuner and the report build on it."""
