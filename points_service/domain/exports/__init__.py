"""HR exports: one row builder (``annual.annual_rows``) and the CSV/XLSX writers (``files``)."""
