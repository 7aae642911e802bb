"""Compiled Cython modules built from ext/*.pyx (pure-Python twins live in tracer._pure)."""
