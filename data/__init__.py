"""Dataset readers: real files → plain Python/NumPy records. No TensorFlow, no downloads."""


from common.errors import DataError  # noqa: F401  (re-exported: readers raise it as data.DataError)


def read_json(path, what: str = "JSON file"):
    """Parses a UTF-8 JSON file; every failure is a DataError naming ``what``, the file and the place."""
    import json
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        raise DataError(f"{what} {str(path)!r} is a folder; expected a JSON file")
    if not path.is_file():
        raise DataError(f"{what} {str(path)!r} does not exist")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise DataError(
            f"{what} {str(path)!r} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    except UnicodeDecodeError as error:
        raise DataError(f"{what} {str(path)!r} is not UTF-8 text: {error}") from None
