"""`ascbench ablate`: every (variant, seed) of a small YAML grid as a Ray run, paired by seed.

grid.py parses the grid and resolves each run's config, identity.py names a run by
the hash of that config, store.py keeps one record per finished hash, execute.py runs
what is missing on Ray, stats.py turns the records into paired statistics.
"""
