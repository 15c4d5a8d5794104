"""The checks, one module per risk; each exposes ``check(ctx) -> Iterator[Finding]``."""
