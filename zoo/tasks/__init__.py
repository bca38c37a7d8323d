"""Tasks: how graph outputs become predictions and a metric, for every backend alike.

One file per task, each behind the :class:`~zoo.tasks.base.Task` protocol and registered
under its name on import; :func:`get_task` looks one up. Metric arithmetic lives in
:mod:`zoo.tasks.metrics`, helpers the tasks share in :mod:`zoo.tasks.common`.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from zoo.tasks.anomaly import AnomalyDetection
from zoo.tasks.base import TASKS, Task, get_task, register_task
from zoo.tasks.classification import Classification, TextClassification
from zoo.tasks.common import _PER_DATA as _PER_DATA  # per-data cache (tests watch it)
from zoo.tasks.common import _state_widths as _state_widths  # zoo.generate streams with it
from zoo.tasks.common import (
    check_encodable,
    check_series,
    is_wav,
    length_batches,
    once_per_data,
    parity_pool,
    read_series,
    read_text_source,
    stream,
)
from zoo.tasks.ctc_recognition import CTCRecognition
from zoo.tasks.forecasting import Forecasting
from zoo.tasks.keyword_spotting import KeywordSpotting
from zoo.tasks.language_model import LanguageModel
from zoo.tasks.metrics import detection_scores, edit_distance, ssim
from zoo.tasks.next_frame import NextFrame
from zoo.tasks.peptide import PeptideClassification
from zoo.tasks.seq2seq import Seq2Seq
from zoo.tasks.user import UserModelTask

# A task registers itself when its module is imported: every module here is, in name order,
# so a new task is its file alone (the names above are the package's API).
for _module in sorted(m.name for m in _pkgutil.iter_modules(__path__)):
    _importlib.import_module(f"{__name__}.{_module}")

__all__ = [
    "TASKS", "AnomalyDetection", "CTCRecognition", "Classification", "Forecasting",
    "KeywordSpotting", "LanguageModel", "NextFrame", "PeptideClassification", "Seq2Seq",
    "Task", "TextClassification",
    "check_encodable", "check_series", "detection_scores", "edit_distance", "get_task",
    "is_wav", "length_batches", "once_per_data", "parity_pool", "read_series",
    "read_text_source", "register_task", "ssim", "stream", "UserModelTask",
]
