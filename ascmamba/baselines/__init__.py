"""Reference models ASCMamba is compared with: a DCASE CNN, a patch transformer and the APSIPA official baseline."""
