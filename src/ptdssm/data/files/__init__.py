"""File-backed tasks needing no code: ``ucr`` (UCR/UEA ``.ts``), ``arrays`` (``.npz`` / ``.npy``) and ``csv``.

See :mod:`ptdssm.data.files.tasks` for where the files go and the options, :mod:`ptdssm.data.files.ts_format` for
the ``.ts`` format, :mod:`ptdssm.data.files.tables` for the array and CSV layouts.
"""

from .common import normalize_series, stratified_split
from .tables import npz_shapes, read_array_split, read_csv_split
from .ts_format import TsFile, TsHeader, read_ts, read_ts_header

__all__ = ["TsFile", "TsHeader", "normalize_series", "npz_shapes", "read_array_split", "read_csv_split", "read_ts",
           "read_ts_header", "stratified_split"]
