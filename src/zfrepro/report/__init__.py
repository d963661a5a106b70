"""Our numbers beside the paper's: its published values, our tables and our figures.

- `paper`: every published number, stored once;
- `tables` (Tables 2, 3 and the shared writer), `transfer_tables` (Tables 4-7);
- `figures` (Figs 1-4, 6) and `figures_<study>` (Figs 5, 7, 8, 9).
"""
