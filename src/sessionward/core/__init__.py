"""sessionward.core."""
