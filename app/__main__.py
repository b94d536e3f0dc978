"""``python -m app`` runs the open311 command."""

from app.cli import main

main()
