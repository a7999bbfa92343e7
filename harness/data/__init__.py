"""Data: the synthetic corpus, the APSIPA/CAS and DCASE loaders, splits and the feature cache."""
