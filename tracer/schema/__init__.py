"""The event table and the field table: declared once, used by the probe, decoder, filter and output."""
