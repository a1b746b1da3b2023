"""`python -m model_zoo ...`: the command line reaches the same code as the app."""

from model_zoo.cli import main

raise SystemExit(main())
