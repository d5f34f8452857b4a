"""Reader for a 1-D acceleration (vibration) signal stored in one of several common formats.

    read_signal(path, key=None, column=None) -> np.ndarray float64 [N]
    signal_files(spec) -> [Path]   # one file, a folder of recordings, or "a.npz,b.csv" (several at once)

Formats, chosen by extension:
  .pkl  pandas Series, or DataFrame (``column`` names the column unless there is only one), or a
        NumPy array (the lecture's ``rnn_time_signal.pkl`` is a pickled pandas object)
  .npy  a 1-D array, or 2-D with one column
  .npz  ``key`` names the array (e.g. ``DE`` in the CWRU bearing files) unless there is only one
  .csv  ``column`` names the column (header row) unless there is only one numeric column
  .mat  MATLAB file (scipy.io.loadmat); ``key`` names the variable (e.g. ``X097_DE_time``) unless
        there is only one numeric variable
A pickle can run code when loaded: only read .pkl files you trust (as with pandas.read_pickle).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data import DataError

FORMATS = (".pkl", ".npy", ".npz", ".csv", ".mat")


def _as_vector(values, path: Path, what: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise DataError(f"{path}: {what} is not numeric ({error})") from None
    if array.ndim == 2 and 1 in array.shape:
        array = array.reshape(-1)  # (N, 1) as in the CWRU files, or (1, N) from MATLAB
    if array.ndim != 1:
        raise DataError(f"{path}: {what} has shape {array.shape}; expected a 1-D signal (N,) or (N, 1)")
    bad = ~np.isfinite(array)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: {what} contains {int(bad.sum())} NaN/inf value(s) (first at sample {first}); "
            "expected finite samples — fill or cut the gaps before training"
        )
    return array


def _pick(names: list[str], wanted: str | None, path: Path, option: str) -> str:
    if wanted is not None:
        if wanted not in names:
            raise DataError(f"{path}: no {option} {wanted!r}; available: {names}")
        return wanted
    if len(names) == 1:
        return names[0]
    raise DataError(f"{path}: holds {len(names)} signals {names}; choose one with --set {option}=NAME")


def _read_pickle(path: Path, column: str | None) -> np.ndarray:
    import pandas

    try:
        obj = pandas.read_pickle(path)
    except Exception as error:  # pickle raises many types for a corrupt file
        raise DataError(f"{path}: not a readable pickle ({type(error).__name__}: {error})") from None
    if isinstance(obj, pandas.DataFrame):
        name = _pick([str(c) for c in obj.columns], column, path, "column")
        series = obj[[c for c in obj.columns if str(c) == name][0]]
        return _as_vector(series.to_numpy(), path, f"column {name!r}")
    if isinstance(obj, pandas.Series):
        return _as_vector(obj.to_numpy(), path, "the Series")
    if isinstance(obj, (np.ndarray, list, tuple)):
        return _as_vector(obj, path, "the pickled array")
    raise DataError(f"{path}: pickled {type(obj).__name__}; expected a pandas Series/DataFrame or an array")


def _read_npz(path: Path, key: str | None) -> np.ndarray:
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as error:
        raise DataError(f"{path}: not a readable .npz archive ({error})") from None
    with archive:
        if key is not None:
            name = _pick(list(archive.files), key, path, "signal_key")
            return _as_vector(archive[name], path, f"array {name!r}")
        # Without a key every array must be read to tell the signal from metadata: read each once.
        arrays = {n: archive[n] for n in archive.files}
    # Scalars stored beside the signal (e.g. sample_rate) are metadata, not candidates.
    candidates = [n for n, a in arrays.items() if a.size > 1] or list(arrays)
    name = _pick(candidates, None, path, "signal_key")
    return _as_vector(arrays[name], path, f"array {name!r}")


def _read_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as error:
        raise DataError(f"{path}: not a readable .npy file ({error})") from None
    return _as_vector(array, path, "the array")


def _read_csv(path: Path, column: str | None) -> np.ndarray:
    import pandas

    try:
        # Blank lines are kept (as empty rows) so that a missing sample is an error, not a silent
        # shift of every later sample by one step.
        frame = pandas.read_csv(path, skip_blank_lines=False)
    except Exception as error:
        raise DataError(f"{path}: not a readable CSV file ({error})") from None
    blank = frame.isna().all(axis=1).to_numpy()
    last = len(blank) - int(np.argmax(~blank[::-1])) if (~blank).any() else 0
    frame = frame.iloc[:last]  # blank lines at the end of the file are harmless
    if blank[:last].any():
        row = int(np.flatnonzero(blank[:last])[0])
        raise DataError(f"{path}: line {row + 2} is blank; expected one sample per line (a missing sample would shift "
                        f"the rest of the signal in time): remove the line or fill in the value")
    if frame.empty:
        raise DataError(f"{path}: the CSV file has no rows")
    if column is None:
        numeric = [str(c) for c in frame.columns if pandas.api.types.is_numeric_dtype(frame[c])]
        name = _pick(numeric or [str(c) for c in frame.columns], None, path, "column")
    else:
        name = _pick([str(c) for c in frame.columns], column, path, "column")
    values = pandas.to_numeric(frame[name], errors="coerce")
    if values.isna().any() and not frame[name].isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise DataError(f"{path}: column {name!r} row {row + 2} holds {frame[name].iloc[row]!r}; expected a number")
    return _as_vector(values.to_numpy(), path, f"column {name!r}")


def _read_mat(path: Path, key: str | None) -> np.ndarray:
    import scipy.io

    try:
        contents = scipy.io.loadmat(path)
    except Exception as error:
        raise DataError(f"{path}: not a readable MATLAB file ({error})") from None
    names = [k for k, v in contents.items()
             if not k.startswith("__") and isinstance(v, np.ndarray) and v.dtype.kind in "fiu"]
    name = _pick(names, key, path, "signal_key")
    return _as_vector(contents[name], path, f"variable {name!r}")


def read_signal(path: str | Path, key: str | None = None, column: str | None = None) -> np.ndarray:
    """Reads one 1-D signal as float64; raises DataError naming the file and the problem."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; expected one signal file with extension {list(FORMATS)}")
    suffix = path.suffix.lower()
    if suffix == ".pkl" or suffix == ".pickle":
        signal = _read_pickle(path, column)
    elif suffix == ".npy":
        signal = _read_npy(path)
    elif suffix == ".npz":
        signal = _read_npz(path, key)
    elif suffix == ".csv":
        signal = _read_csv(path, column)
    elif suffix == ".mat":
        signal = _read_mat(path, key)
    else:
        raise DataError(f"{path}: unsupported signal format {suffix!r}; expected one of {list(FORMATS)}")
    if signal.size == 0:
        raise DataError(f"{path}: the signal is empty")
    return signal


READABLE = FORMATS + (".pickle",)


def signal_files(spec: str | Path) -> list[Path]:
    """The recordings ``--data-dir`` names: one file; a folder (its files with a signal extension, sorted
    by name; other files such as a README are skipped); or a comma-separated list of files. A bad
    entry of a list raises DataError naming it; the files themselves are read by ``read_signal``."""
    text = str(spec)
    path = Path(text)
    if "," in text and not path.exists():
        entries = [entry.strip() for entry in text.split(",")]
        if not all(entries):
            raise DataError(f"--data-dir {text!r}: an empty entry in the comma-separated list of signal files")
        paths = [Path(entry) for entry in entries]
        for entry in paths:
            if not entry.exists():
                raise DataError(f"{entry}: no such file (an entry of the --data-dir list {text!r})")
            if entry.is_dir():
                raise DataError(f"{entry}: is a folder; each entry of a --data-dir list must be one signal file "
                                f"with extension {list(FORMATS)} (or pass the folder alone)")
            if entry.suffix.lower() not in READABLE:
                raise DataError(f"{entry}: unsupported signal format {entry.suffix!r} (an entry of the --data-dir "
                                f"list); expected one of {list(FORMATS)}")
        resolved = [entry.resolve() for entry in paths]
        repeated = sorted({str(p) for p, r in zip(paths, resolved) if resolved.count(r) > 1})
        if repeated:
            raise DataError(f"{repeated[0]}: listed twice in --data-dir; each recording may be used once")
        return paths
    if path.is_dir():
        files = sorted(p for p in path.iterdir()
                       if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in READABLE)
        if not files:
            raise DataError(f"{path}: a folder with no signal files; expected files with extension {list(FORMATS)}")
        return files
    return [path]
