"""Errors that end a command with one clear line instead of a traceback."""


class FedtwinError(Exception):
    """A problem the user can act on; its message says what is wrong and what to do."""


class ServiceUnavailable(FedtwinError):
    """A service fedtwin needs is not reachable at its configured address."""


class InvalidModel(FedtwinError):
    """A model record failed its checksum, signature or shape checks."""


class DataValidationError(FedtwinError):
    """A data set failed validation; the message lists the failed expectations."""
