"""sessionward.guards."""
