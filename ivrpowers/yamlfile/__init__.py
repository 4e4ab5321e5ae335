"""YAML files admins write (flows, queues and agents): read with the line of every value
(`reader`), validated by a pydantic model, every problem reported at once as `FILE:LINE: message`
(`checked`)."""

from .checked import MAX_CHARS, FileError, Problem, Severity, check_file, describe, kind_of, read_text_file, where
from .reader import MAX_DEPTH, MAX_VALUES, Document, Loc, Unusable, Where, read

__all__ = ["MAX_CHARS", "MAX_DEPTH", "MAX_VALUES", "Document", "FileError", "Loc", "Problem", "Severity", "Unusable",
           "Where", "check_file", "describe", "kind_of", "read", "read_text_file", "where"]
