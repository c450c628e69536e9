"""The conflict engine: the spatio-temporal index, the candidate pass and the exact test."""
