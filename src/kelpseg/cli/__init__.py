"""The ``kelpseg`` command. Thin: parse, build a config, call one library function, print."""
