"""``python -m course release OUT`` (the student edition, :mod:`course.release`) and
``python -m course grade SUBMISSIONS --out grades.csv`` (:mod:`course.autograde`) and
``python -m course site OUT`` (:mod:`course.site`)."""
import argparse
import sys
from pathlib import Path

from .release import LeakError, release


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course", description="The course's tooling.")
    commands = parser.add_subparsers(dest="command", required=True)
    student = commands.add_parser("release", help="write the student edition (no answers) to OUT")
    student.add_argument("out", type=Path, metavar="OUT", help="a new or empty folder")
    grade = commands.add_parser("grade", help="grade SUBMISSIONS/<student>/<notebook>.ipynb into a CSV")
    grade.add_argument("submissions", type=Path, metavar="SUBMISSIONS", help="one folder per student")
    grade.add_argument("--out", type=Path, default=Path("grades.csv"), help="the CSV to write")
    site = commands.add_parser("site", help="render the notebooks (quick sizes) and the syllabus to OUT")
    site.add_argument("out", type=Path, metavar="OUT")
    site.add_argument("--only", nargs="+", default=None, help="notebook names (without .ipynb)")
    args = parser.parse_args(argv)
    if args.command == "site":
        from .site import build

        written = build(args.out, args.only)
        print(f"course site: {len(written)} pages in {args.out} (open {args.out / 'index.html'})")
        return 0
    if args.command == "grade":
        if not args.submissions.is_dir():
            print(f"error: {args.submissions} is not a folder: give SUBMISSIONS/<student>/<notebook>.ipynb",
                  file=sys.stderr)
            return 2
        from .autograde import grade_submissions

        rows = grade_submissions(args.submissions, args.out)
        print(f"{len(rows)} students graded -> {args.out} (reasons in {args.out.with_suffix('.feedback.json')})")
        return 0
    try:
        written = release(args.out)
    except (FileExistsError, LeakError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"student edition: {len(written)} files in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
