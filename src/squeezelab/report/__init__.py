"""Reports of a run: training curves, confusion matrices."""
