"""Built-in unlearning methods, one module each. Each module registers its methods when
imported; the harness imports them through the entry points ``pyproject.toml`` declares
(group ``unlearn_bench.methods``), as it imports a third party's, never by this name."""
