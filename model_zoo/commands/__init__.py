"""Sub-command groups of `python -m model_zoo`; each module defines `register(subparsers)`."""
