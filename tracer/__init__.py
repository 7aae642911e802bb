"""ktrace: a syscall troubleshooting tracer for Linux and Kubernetes nodes."""

__version__ = "0.1.0"
