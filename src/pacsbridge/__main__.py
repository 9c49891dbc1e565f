"""`python -m pacsbridge` is the CLI."""

from pacsbridge.cli import main

main()
