"""sessionward.lifecycle."""
