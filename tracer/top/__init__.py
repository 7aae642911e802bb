"""``ktrace top``: csysdig's interactive views (the terminal UI and -j) over ``tracer.views``."""
