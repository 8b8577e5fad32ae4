"""Analysis: per-layer summaries (the paper's Table 1), design-space exploration, peer comparison."""
