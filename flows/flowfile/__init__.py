"""Flow files: reading, shape, references, step checks, bundles and the editor schema."""
