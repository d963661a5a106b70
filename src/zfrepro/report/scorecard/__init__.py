"""The scorecard's parts: its statistics, a claim's row, reading the inputs, and one module per paper section's
claims. zfrepro.report.claims puts them together (and documents the method)."""
