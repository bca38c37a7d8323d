"""Model families. Importing this package registers every family."""

from zoo.models import (  # noqa: F401
    bilstm_activity,
    bilstm_text,
    char_lm,
    convlstm_nextframe,
    handwriting_ctc,
    handwriting_rows,
    kws_lstm,
    lstm_autoencoder,
    lstm_forecaster,
    seq2seq_g2p,
    speech_ctc,
)
