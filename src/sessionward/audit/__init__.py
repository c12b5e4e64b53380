"""sessionward.audit."""
