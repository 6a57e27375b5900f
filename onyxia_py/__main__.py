"""`python -m onyxia_py`."""

from onyxia_py.cli import main

main()
