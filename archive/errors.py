"""Every exception raised on purpose by hep-archive.

The tree (``x`` a direct child of the root, ``+`` a grandchild)::

    ArchiveError                                     root: catch this to catch everything we raise
      x ValidationError(ArchiveError, ValueError)      a record, recipe, card or input file is malformed
        + SchemaVersionError                           unknown or unsupported ``schema_version``
        + ExpressionError                              an observable or selection cannot be parsed
        + UnsafeInputError                             hostile input refused (traversal, pickle, bombs, links)
      x NotFoundError(ArchiveError, LookupError)
        + RecordNotFoundError(NotFoundError, KeyError) no such record id or version
        + ObjectNotFoundError(NotFoundError, FileNotFoundError) no such stored object
        + ArchiveRootNotFoundError                     no archive root above the current directory
      x ImmutableError(ArchiveError, PermissionError)  published versions and reused versions are refused
      x IntegrityError(ArchiveError)                   digest or size mismatch, corrupt object (NOT a ValueError)
      x StorageError(ArchiveError, OSError)            the backing store failed (wraps fsspec/OS errors)
      x ExecutionError(ArchiveError)                   a step, a container or a model failed to run
        + RunFailedError                               a workflow step exited non-zero
        + ReproducibilityError                         a rerun differs from the archived outputs
        + UnsupportedOperationError(ExecutionError, NotImplementedError)
      x ReleaseError(ArchiveError)                     release checks failed (all failures listed)
      x MissingDependencyError(ArchiveError, ImportError) an optional extra or system tool is absent
      x LockError(ArchiveError, TimeoutError)          another process holds the archive lock

Every class has a stable ``code`` and an ``exit_code`` from one table (the CLI maps them to the process exit
status): 0 ok, 1 operation failed, 2 usage error, 3 integrity or reproducibility failure, 4 not found,
5 refused (immutable, unsafe).

Messages say what was wrong, where and how to fix it: ``file: field: reason``. Library code raises; only the
CLI prints.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ArchiveError",
    "ArchiveRootNotFoundError",
    "ExecutionError",
    "ExpressionError",
    "ImmutableError",
    "IntegrityError",
    "LockError",
    "MissingDependencyError",
    "NotFoundError",
    "ObjectNotFoundError",
    "Problem",
    "RecordNotFoundError",
    "ReleaseError",
    "ReproducibilityError",
    "RunFailedError",
    "SchemaVersionError",
    "StorageError",
    "UnsafeInputError",
    "UnsupportedOperationError",
    "ValidationError",
]


class Problem:
    """One located problem: where (a file), what (a field path) and why (a reason)."""

    __slots__ = ("field", "file", "reason")

    def __init__(self, file: str | None, field: str | None, reason: str) -> None:
        self.file = file
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        return ": ".join(part for part in (self.file, self.field, self.reason) if part)

    def __repr__(self) -> str:
        return f"Problem({self.file!r}, {self.field!r}, {self.reason!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Problem):
            return NotImplemented
        return (self.file, self.field, self.reason) == (other.file, other.field, other.reason)

    def __hash__(self) -> int:
        return hash((self.file, self.field, self.reason))

    def as_dict(self) -> dict[str, str | None]:
        return {"file": self.file, "field": self.field, "reason": self.reason}


class ArchiveError(Exception):
    """Root of every exception hep-archive raises on purpose."""

    code: str = "archive-error"
    exit_code: int = 1

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        field: str | None = None,
        problems: Sequence[Problem] = (),
    ) -> None:
        self.reason = reason
        self.file = file
        self.field = field
        self.problems: list[Problem] = list(problems)
        super().__init__(str(Problem(file, field, reason)))

    def lines(self) -> list[str]:
        """One line per problem, for the CLI (the summary line first when there are several)."""
        if not self.problems:
            return [str(self)]
        return [str(p) for p in self.problems] + ([str(self)] if len(self.problems) > 1 else [])


class ValidationError(ArchiveError, ValueError):
    code = "invalid"


class SchemaVersionError(ValidationError):
    code = "schema-version"


class ExpressionError(ValidationError):
    code = "expression"


class UnsafeInputError(ValidationError):
    code = "unsafe-input"
    exit_code = 5


class NotFoundError(ArchiveError, LookupError):
    code = "not-found"
    exit_code = 4


class RecordNotFoundError(NotFoundError, KeyError):
    code = "record-not-found"

    def __str__(self) -> str:  # KeyError would repr() the message
        return Exception.__str__(self)


class ObjectNotFoundError(NotFoundError, FileNotFoundError):
    code = "object-not-found"


class ArchiveRootNotFoundError(NotFoundError):
    code = "no-archive-root"


class ImmutableError(ArchiveError, PermissionError):
    code = "immutable"
    exit_code = 5


class IntegrityError(ArchiveError):
    code = "integrity"
    exit_code = 3


class StorageError(ArchiveError, OSError):
    code = "storage"


class ExecutionError(ArchiveError):
    code = "execution"


class RunFailedError(ExecutionError):
    code = "run-failed"


class ReproducibilityError(ExecutionError):
    code = "not-reproduced"
    exit_code = 3


class UnsupportedOperationError(ExecutionError, NotImplementedError):
    code = "unsupported"


class ReleaseError(ArchiveError):
    code = "release-checks"


class MissingDependencyError(ArchiveError, ImportError):
    code = "missing-dependency"

    def __init__(self, what: str, hint: str) -> None:
        self.hint = hint
        super().__init__(f"{what} is not available; {hint}")


class LockError(ArchiveError, TimeoutError):
    code = "locked"
