"""Dataset readers: real files → plain Python/NumPy records. No TensorFlow, no downloads."""


class DataError(ValueError):
    """Input data is missing or malformed. The message names the file/field and what was expected."""
