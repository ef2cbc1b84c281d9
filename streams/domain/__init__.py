"""Pure domain logic: frozen dataclasses in, decisions out; no I/O and no broker or database clients."""
