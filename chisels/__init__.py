"""Built-in chisels: one module per chisel (see tracer.chisel for the contract)."""
