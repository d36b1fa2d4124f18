"""From stored scores to output: thresholds, MCut and ratings, and caption files."""
