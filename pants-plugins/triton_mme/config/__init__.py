"""config.pbtxt: parsed once with Triton's own schema, then checked family by family.

`parse.py` reads a config into a `ModelConfigFile` (the message, a typed summary, and the line
of every field); each other module holds one family of Triton's load-time rules and returns
`ModelConfigError`s; `checks.py` runs them all on one model directory.
"""
