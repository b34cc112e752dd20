"""The course built on tinyhydra's six notebooks: the exercise checks with their hints, and,
in the teacher's copy, the answers, the student edition's tooling and the teacher's guide
(README.md here). Not part of the library.

    from course import check
    check("hydra_causal_forward", fn)   # prints one PASS or FAIL line, returns True or False

``python -m course release OUT`` writes the student edition.
"""
from .exercises import EXERCISES, check

__all__ = ["check", "EXERCISES"]
