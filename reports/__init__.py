"""`ascbench report`: REPORT.md and seaborn figures rebuilt from stored tune and ablation results.

discover.py finds the runs under a folder, tune_data.py reads a tune experiment offline,
figures.py draws, sections.py writes the markdown, build.py puts them together.
"""
