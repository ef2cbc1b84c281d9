"""The streams package's exceptions: one root."""

from __future__ import annotations


class AlarmflowError(Exception):
    """Root of every error raised by the streams package."""


class ConfigError(AlarmflowError):
    """A setting is missing or invalid; the message names the environment variable."""


class BrokerError(AlarmflowError):
    """The local Kafka broker could not be resolved, started, reached or stopped."""


class BrokerUnavailable(BrokerError):
    """No Kafka broker answers at the configured address."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(
            f"no Kafka broker at {bootstrap}: start one with `alarmflow kafka up` "
            "(or point ALARMFLOW_KAFKA_BOOTSTRAP at a running one)"
        )
        self.bootstrap = bootstrap


class PublishError(AlarmflowError):
    """Some lines of a file could not be published; each is reported with its line number."""
