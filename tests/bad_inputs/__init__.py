"""The bad-input catalogue (issue 32, item 6): :data:`catalogue.CASES`, run by
tests/test_bad_inputs.py; docs/cli.md says what it covers and how it is counted."""
