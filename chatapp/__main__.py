"""`python -m chatapp`: the same as the `chatapp` command."""

import sys

from .frozen import prepare

if __name__ == "__main__":
    prepare()
    from .cli import main
    sys.exit(main())
