"""`python -m maas`: the `maas` command."""

from maas.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
