"""JSON <-> models.

- `runtime`: what structuring functions call at run time (the leaf: imports nothing of
  the SDK);
- `generated`: the structuring functions of sessions, written ahead of time by
  ``scripts/gen_decoders.py``;
- `decode`: the hot path, sessions from response bodies without cattrs;
- `converter`: the one cattrs converter, for every other model and every error report.
"""
