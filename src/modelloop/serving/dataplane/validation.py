"""Validation of a request against a variant's signature, once per request on the whole array:
a numeric signature takes one float64 array (one conversion, one shape check, one integrality
check); a signature of numbers and text served by a fast-path plan takes one object array
(numbers converted per column block, text checked per value, no pandas); any other takes the
signature's DataFrame path. Errors name the row, column or value."""

from __future__ import annotations

from modelloop.errors import InvalidInput
from modelloop.serving.dataplane.payload import MAX_REQUEST_ROWS, Payload, RowLimit

#: Signature types that validate as numbers.
NUMERIC = {"integer", "long", "float", "double", "boolean"}


class Validator:
    """The validation plan of one signature, made once when the variant loads."""

    def __init__(self, signature, options: dict, *, arrays: bool = False):
        """``arrays``: the model takes object arrays (a fast-path plan), not DataFrames."""
        self.signature = signature
        self.columns = signature.names
        self.index = {n: i for i, n in enumerate(self.columns)}
        self.numeric = all(c.type in NUMERIC for c in signature.columns)
        self.int_cols = [i for i, c in enumerate(signature.columns)
                         if c.type in ("integer", "long")]
        self.mixed = arrays and not self.numeric and all(
            c.type in NUMERIC or c.type == "string" for c in signature.columns)
        self.num_idx = [i for i, c in enumerate(signature.columns) if c.type in NUMERIC]
        self.text_idx = [i for i, c in enumerate(signature.columns) if c.type == "string"]
        self.max_rows = int(options.get("max_request_rows", MAX_REQUEST_ROWS))

    def prepare(self, payload: Payload):
        """The rows as the model takes them: a float64 array in signature order (numeric
        signatures) or the signature's validated DataFrame."""
        import numpy as np

        rows = payload.rows
        cols = payload.columns
        if payload.header is None and cols is None and self._is_header(rows):
            cols, rows = rows[0], rows[1:]  # a CSV header: the first row names the columns
            if not rows:
                raise InvalidInput("the CSV body has a header but no rows")
        if len(rows) > self.max_rows:
            raise RowLimit(len(rows), self.max_rows)
        if cols is not None:
            cols = [str(c) for c in cols]
            if cols != self.columns:
                self._check_columns(cols)
        if isinstance(rows, list):
            self._check_rows(rows, cols)
        if self.mixed:
            return self._prepare_mixed(cols, rows)
        if not self.numeric:
            return self._prepare_frame(cols, rows)
        try:
            arr = np.asarray(rows, dtype=np.float64)
        except (ValueError, TypeError):
            self._explain_bad_values(cols, rows)
            raise
        if arr.ndim == 1 and len(self.columns) == 1:
            arr = arr.reshape(-1, 1)
        self._check_shape(arr, cols)
        if cols is not None and cols != self.columns:
            arr = self._reorder(arr, cols)
        if self.int_cols:
            self._check_whole(arr[:, self.int_cols], self.int_cols)
        return arr

    def _check_shape(self, arr, cols) -> None:
        width = len(cols) if cols is not None else len(self.columns)
        if arr.ndim != 2 or arr.shape[1] != width or arr.shape[0] == 0:
            raise InvalidInput(
                f"input has shape {list(arr.shape)}; the model takes rows of "
                f"{len(self.columns)} values",
                hint=f"columns in order: {', '.join(self.columns[:20])}"
                + (" …" if len(self.columns) > 20 else ""),
            )

    def _check_whole(self, part, where: list[int]) -> None:
        import numpy as np

        bad = np.isfinite(part) & (part != np.floor(part))
        if bad.any():
            r, c = np.argwhere(bad)[0]
            spec = self.signature.columns[where[c]]
            raise InvalidInput(
                f"column {spec.name!r} must be {spec.type} (whole numbers), got "
                f"{part[r, c]!r}",
                hint=f"send whole numbers in column {spec.name!r}",
            )

    def _prepare_mixed(self, cols, rows):
        """An object array in signature order: floats (NaN missing) in the numeric columns,
        ``str`` or None in the text columns, as a fast-path plan takes them."""
        import numpy as np

        if isinstance(rows, np.ndarray):
            arr = (rows.reshape(-1, 1) if rows.ndim == 1 else rows).astype(object)
        else:
            arr = np.array(rows, dtype=object)
        self._check_shape(arr, cols)
        if cols is not None and cols != self.columns:
            arr = self._reorder(arr, cols, fill=None)
        if self.num_idx:
            try:
                numbers = arr[:, self.num_idx].astype(np.float64)
            except (ValueError, TypeError):
                self._explain_mixed(arr)
                raise
            if self.int_cols:
                at = [self.num_idx.index(i) for i in self.int_cols]
                self._check_whole(numbers[:, at], self.int_cols)
            arr[:, self.num_idx] = numbers
        for j in self.text_idx:
            col = arr[:, j]
            if not all(type(v) is str for v in col):
                arr[:, j] = [self._text(v, j) for v in col]
        return arr

    def _text(self, value, j: int):
        """A value of a text column as the model's ColumnCaster sees it: ``str`` or None."""
        if value is None or isinstance(value, str):
            return None if value is None else str(value)
        if isinstance(value, bool | int | float):
            return None if value != value else str(value)  # NaN is missing
        raise InvalidInput(f"column {self.columns[j]!r} must be string, got {_short(value)}",
                           hint=f"send text (or null) in column {self.columns[j]!r}")

    def _explain_mixed(self, arr) -> None:
        """Only on the error path: name the numeric column and value that is not a number."""
        for i in self.num_idx:
            spec = self.signature.columns[i]
            for value in arr[:, i]:
                try:
                    float(value if value is not None else "nan")
                except (TypeError, ValueError):
                    raise InvalidInput(f"column {spec.name!r} must be {spec.type}, got "
                                       f"{_short(value)}",
                                       hint=f"send numbers in column {spec.name!r}") from None

    def _is_header(self, rows) -> bool:
        """Whether the first CSV row is the model's column names (each once, any order)."""
        if not isinstance(rows, list) or not rows or not isinstance(rows[0], list):
            return False
        first = rows[0]
        return (len(set(first)) == len(first)
                and all(isinstance(c, str) and c in self.index for c in first))

    def _check_rows(self, rows: list, cols: list | None) -> None:
        """Every row a list of one value per column: a short row is never padded, a long one
        never cut. One fast pass; the slow one only on the error path, to name the row."""
        width = len(cols) if cols is not None else len(self.columns)
        if all(type(r) is list and len(r) == width for r in rows):
            return
        takes = f"the model takes {width} values" if cols is None else \
            f"{width} columns were named"
        names = ", ".join(self.columns[:20]) + (" …" if len(self.columns) > 20 else "")
        for i, r in enumerate(rows):
            if not isinstance(r, list | tuple):
                raise InvalidInput(f"row {i} is not a list of values",
                                   hint="send each row as a list, or use dataframe_records")
            if len(r) != width:
                raise InvalidInput(f"row {i} has {len(r)} values; {takes}",
                                   hint=f"columns in order: {names}")

    def _check_columns(self, cols: list[str]) -> None:
        present = set(cols)
        if len(present) != len(cols):
            dupe = next(c for c in cols if cols.count(c) > 1)
            raise InvalidInput(f"input names column {_short(dupe)} twice",
                               hint="send each column once")
        for c in self.signature.columns:
            if c.name not in present and c.required:
                raise InvalidInput(f"input is missing required column {c.name!r}",
                                   hint=f"the model takes: {', '.join(self.columns)}")
        for name in cols:
            if name not in self.index:
                raise InvalidInput(f"input has column {_short(name)}, which the model does not "
                                   "take",
                                   hint=f"the model takes: {', '.join(self.columns)}")

    def _reorder(self, arr, cols, fill=float("nan")):
        """Columns in signature order; an optional column left out is ``fill``."""
        import numpy as np

        out = np.full((arr.shape[0], len(self.columns)), fill, dtype=arr.dtype)
        for j, name in enumerate(cols):
            out[:, self.index[name]] = arr[:, j]
        return out

    def _explain_bad_values(self, cols, rows) -> None:
        """Only on the error path: find the column whose value is not a number."""
        names = cols or self.columns
        for r, row in enumerate(rows if isinstance(rows, list) else []):
            if not isinstance(row, list | tuple):
                raise InvalidInput(f"row {r} is not a list of values",
                                   hint="send each row as a list, or use dataframe_records")
            if len(row) != len(names):
                raise InvalidInput(
                    f"row {r} has {len(row)} values; the model takes {len(self.columns)}",
                    hint=f"columns in order: {', '.join(self.columns[:20])}",
                )
            for name, value in zip(names, row, strict=False):
                try:
                    float(value if value is not None else "nan")
                except (TypeError, ValueError):
                    spec = self.signature[name]
                    raise InvalidInput(
                        f"column {name!r} must be {spec.type}, got {_short(value)}",
                        hint=f"send numbers in column {name!r}",
                    ) from None
        raise InvalidInput("rows have different lengths or hold nested values",
                           hint=f"send rows of {len(self.columns)} plain values")

    def _prepare_frame(self, cols, rows):
        import pandas as pd

        names = cols or self.columns
        try:
            frame = pd.DataFrame(list(rows) if not hasattr(rows, "shape") else rows,
                                 columns=names)
        except ValueError:
            raise InvalidInput(f"rows must have {len(names)} values",
                               hint=f"columns: {', '.join(names)}") from None
        return self.signature.validate(frame)



def _short(value, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters: an error names the value without echoing a
    megabyte back."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"
