"""Where batches of independent preparations run: serial, local processes, Dask distributed."""
