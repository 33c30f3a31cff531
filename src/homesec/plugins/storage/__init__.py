"""Storage backends: where clips and their artifacts are kept for the user."""
