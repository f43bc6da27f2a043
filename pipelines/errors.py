"""One exception type for every user-facing failure: its message is the one line the user sees."""


class PipelineError(Exception):
    """Bad input or config: the message names the file/key/column and what was expected."""
