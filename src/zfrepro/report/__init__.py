"""Our numbers beside the paper's: its published values, our tables and our figures.

- `paper`: every published number, stored once;
- `write`: every table as CSV and Markdown;
- `tables` (Tables 2, 3), `transfer_tables` (Tables 4-7);
- `plot`: the registry of figures (name -> how to draw it) behind `zfrepro plot`;
- `figures/`: the drawing code, one module per figure family, with the shared `style`.
"""
