"""Pure-Python twins of the ext/ modules: same names, signatures and behaviour, no compiler needed."""
