"""``python -m ramparts.review``: the review command without the rest of the CLI."""

from ramparts.review.cli import app

if __name__ == "__main__":
    app(prog_name="ramparts review")
