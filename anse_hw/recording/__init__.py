"""The recording adapter: every reading and decision written to an MCAP file,
and read back for `replay` and `recordings`."""
