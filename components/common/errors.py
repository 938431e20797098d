"""Errors that components raise for problems a user must fix (not bugs)."""


class PipelineInputError(ValueError):
    """The input data or configuration cannot be used (missing column, empty file, ...)."""


class DataValidationError(RuntimeError):
    """TFDV found anomalies, skew or drift; the message is the readable report."""

    def __init__(self, report: str, anomalies: dict | None = None):
        super().__init__(report)
        self.report = report
        self.anomalies = anomalies or {}
