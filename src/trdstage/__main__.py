"""`python -m trdstage` runs the command line."""

from trdstage.cli import app

app()
