"""Shared by tests/unit and tests/s3: this directory is on sys.path, so `import pgtestdb` works."""
