"""The command-line layer: one module per topic, each command a `configure_<name>_parser(parser)` and a
`<name>_command(args)` that wrap the Python API of the rooms below (data, model, analysis, transfer, report).
The layer above everything: nothing below imports it."""
