"""Rule modules, one per concern; each exposes `RULES` (see `policy.registry`)."""
