"""Errors, as values at stage boundaries and as exceptions for start-up problems.

    Exception
    ├── PipelineError            a stage failed for one clip (returned, never raised)
    │   ├── UploadError          storage backend put/get failed
    │   ├── FilterError          object detector failed (stops the clip)
    │   ├── VLMError             VLM analysis failed (the clip goes on)
    │   └── NotifyError          a notifier failed (the others go on)
    ├── ConfigError              the config file is unusable; lists every problem
    └── CausedError              a message and its cause (also plugins' own errors)
        ├── PluginError          a backend is unknown or its dependency is missing
        ├── StartupError         a component cannot start (port taken, folder unwritable)
        ├── CheckFailed          a `homesec doctor` check found a problem (says what to fix)
        └── RetriesSpent         raised by a plugin that retries on its own, once it gave up

Every error keeps what caused it in `cause` and `__cause__`, so tracebacks survive.
"""

from __future__ import annotations

from typing import ClassVar

from homesec.models.enums import StageName


class CausedError(Exception):
    """A message and what caused it (`cause`, also `__cause__`); the base of plugins' errors.

    `summary`: a few words a person may read in an alert ("HTTP 500", "no answer in time"),
    without addresses or a server's own text; the message is for the log.
    """

    def __init__(
        self, message: str, cause: BaseException | None = None, *, summary: str | None = None
    ) -> None:
        super().__init__(message)
        self.cause = cause
        self.__cause__ = cause
        self.summary = summary


class RetriesSpent(CausedError):
    """A plugin's own retries are spent (or trying again cannot help): the stage is not
    tried again. Without it, the pipeline's stage retries multiply the plugin's: a VLM that
    times out would hold a clip's alert back for attempts x retries x timeout."""


class PipelineError(Exception):
    """A stage failed for one clip: `plugin_name` (a backend, or the notification sinks) and why."""

    stage: ClassVar[StageName]
    _failed: ClassVar[str]  # the message, with the plugin's name for {}

    def __init_subclass__(cls, *, stage: StageName, failed: str) -> None:
        super().__init_subclass__()
        cls.stage = stage
        cls._failed = failed

    def __init__(self, clip_id: str, plugin_name: str, cause: BaseException | None) -> None:
        super().__init__(self._failed.format(plugin_name))
        self.clip_id = clip_id
        self.plugin_name = plugin_name
        self.cause = cause
        self.__cause__ = cause

    def describe(self) -> str:
        """One line for the stage journal: what failed and why."""
        if self.cause is None:
            return str(self)
        reason = str(self.cause) or type(self.cause).__name__
        return f"{self}: {type(self.cause).__name__}: {reason}"


class UploadError(PipelineError, stage=StageName.UPLOAD, failed="upload to {} failed"): ...


class FilterError(PipelineError, stage=StageName.FILTER, failed="filter {} failed"): ...


class VLMError(PipelineError, stage=StageName.VLM, failed="VLM {} failed"): ...


class NotifyError(PipelineError, stage=StageName.NOTIFY, failed="notifier {} failed"): ...


class ConfigError(Exception):
    """The configuration cannot be used; `problems` holds one `key.path: reason` per error."""

    def __init__(self, problems: list[str], cause: BaseException | None = None) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        self.__cause__ = cause


class PluginError(CausedError):
    """A plugin cannot be loaded: unknown backend, or an optional dependency is missing."""


class StartupError(CausedError):
    """A component cannot start; the message says which and why."""


class CheckFailed(CausedError):
    """A `homesec doctor` check found a problem; the message says what is wrong and what to
    fix, without a secret."""
