"""The points engine's ledger: crediting, corrections, settlement (decay/reset/expiry) and totals."""
