"""``python -m course release OUT``: write the student edition (see :mod:`course.release`)."""
import argparse
import sys
from pathlib import Path

from .release import LeakError, release


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course", description="The course's tooling.")
    commands = parser.add_subparsers(dest="command", required=True)
    student = commands.add_parser("release", help="write the student edition (no answers) to OUT")
    student.add_argument("out", type=Path, metavar="OUT", help="a new or empty folder")
    args = parser.parse_args(argv)
    try:
        written = release(args.out)
    except (FileExistsError, LeakError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"student edition: {len(written)} files in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
