"""`python -m harness.cli ...`, the same as the `ascbench` script."""
from . import main

raise SystemExit(main())
