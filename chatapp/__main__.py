"""`python -m chatapp`: the same as the `chatapp` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
