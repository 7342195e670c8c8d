"""Errors that reach users.

Every error a user can cause (a bad file, a bad parameter, a dataset that does not fit) is raised as a
:class:`LesionSegError` (or a subclass) carrying one sentence that names the file or parameter and says
what is wrong. The command line turns these into exit code 2; anything else is an internal error
(exit code 1).
"""

from __future__ import annotations


class LesionSegError(Exception):
    """A problem with the user's input, explained in one sentence."""

    exit_code = 2


class InputFileError(LesionSegError):
    """A file or folder given by the user cannot be used (missing, unreadable, wrong kind of image)."""


class DatasetError(LesionSegError):
    """A dataset's layout or contents do not fit (no cases, mismatched channels, multi-label masks)."""


class GeometryError(LesionSegError):
    """Images that must share one physical grid do not (size, spacing, origin or direction differ)."""


class ParameterError(LesionSegError):
    """A parameter (command-line option or function argument) has a value that cannot be used."""


class PreprocessingError(LesionSegError):
    """A case cannot be prepared: no brain found, a channel that cannot be registered, NaN voxels, ..."""


class BundleError(LesionSegError):
    """A model bundle file is truncated, foreign, of a newer format, or does not fit the input."""


class CancelledError(Exception):
    """A long-running job was cancelled through its cancel flag; not an error of the user's input."""

    exit_code = 130
