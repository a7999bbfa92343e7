"""The one experiment engine behind `ascbench tune`, the confirmation of tune winners and `ascbench ablate`."""
