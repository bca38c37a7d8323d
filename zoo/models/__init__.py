"""Model families. Importing this package registers every family."""

from zoo.models import bilstm_activity, handwriting_rows, seq2seq_g2p  # noqa: F401
