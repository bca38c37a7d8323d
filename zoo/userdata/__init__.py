"""The user's own labelled data, for fine-tuning: NPZ, CSV, WAV folders, TSV texts, validated.

Formats:

- ``.npz`` with ``x`` (N, T, C) numbers (or (N, T) for one channel) and ``y`` (N,)
  labels (strings or integers); optionally ``channels`` (C,) channel names.
- ``.csv`` in long form, one row per time step: a header with ``id`` and ``label``
  columns, every other column a feature; the rows of one series are consecutive and
  in time order. Example::

      id,label,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z
      s1,Walking,0.12,-0.98,0.05,0.01,0.00,0.02
      s1,Walking,0.15,-0.97,0.04,0.02,0.01,0.02
      ...

- ``.tsv`` texts with a ``text`` and a ``label`` column, for text classifiers
  (:func:`load_texts`).
- a folder of WAV files, one subfolder per label (``my_words/yes/001.wav``, ...), for
  speech models: each recording (mono PCM, any sample rate, at most 2 s) is trimmed of
  silence and centred in 1 s, or cut to its middle second (:func:`zoo.audio.fit_window`),
  then becomes log-mel frames (:func:`zoo.audio.log_mel`). Hidden folders are skipped.

Every series must have the same length (pad or resample before; the model itself runs
any length, but training batches are rectangular). Labels are kept as strings; class
order is sorted, so the same data always gives the same class indices.
"""

from zoo.userdata.sequences import (
    FORMATS,
    MAX_SECONDS,
    MIN_PER_CLASS,
    TRANSCRIBED_FORMATS,
    LabelledSequences,
    TranscribedSequences,
    check_classes,
    check_fits,
    data_sha256,
    load_sequences,
    load_transcribed,
    random_split,
    stratified_split,
)
from zoo.userdata.texts import (
    PAIR_FORMATS,
    TEXT_FORMATS,
    LabelledTexts,
    TranscribedWords,
    load_pairs,
    load_texts,
)

__all__ = ["FORMATS", "MAX_SECONDS", "MIN_PER_CLASS", "PAIR_FORMATS", "TEXT_FORMATS",
           "TRANSCRIBED_FORMATS", "LabelledSequences", "LabelledTexts", "TranscribedSequences",
           "TranscribedWords", "check_classes", "check_fits", "data_sha256", "load_pairs",
           "load_sequences", "load_texts", "load_transcribed", "random_split",
           "stratified_split"]
