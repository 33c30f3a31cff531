"""`python -m tests.fakes.run_homesec ...`: the real CLI with the fake plugins registered."""

import tests.fakes.plugins  # noqa: F401  (registers the fakes)
from homesec.cli import main

if __name__ == "__main__":
    main()
