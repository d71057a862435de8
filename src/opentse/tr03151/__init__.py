"""Pure TR-03151 core: log messages, DER, time formats, signing. No I/O here."""
