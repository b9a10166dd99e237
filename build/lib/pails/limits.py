"""Every hard limit of Pails in one place."""

MAX_KEY_BYTES = 1024
MIN_BUCKET_NAME = 3
MAX_BUCKET_NAME = 63
MAX_USER_METADATA_BYTES = 2 * 1024
MAX_HEADER_BYTES = 8 * 1024
MAX_OBJECT_SIZE = 5 * 1024**4
MAX_SINGLE_PUT_SIZE = 5 * 1024**3
MAX_KEYS_PER_LIST = 1000
MAX_KEYS_PER_DELETE = 1000
MAX_XML_BODY_BYTES = 2 * 1024 * 1024

# Data path
CHUNK_SIZE = 8 * 1024 * 1024
"""Objects are split into chunks of at most this many bytes."""
CHECKSUM_BLOCK = 1024 * 1024
"""Each chunk carries one CRC32C per block of this size, so a range read verifies only what it sends."""
SMALL_CHUNK_MAX = 1024 * 1024
"""Chunks up to this size are buffered and packed into a shared volume."""
VOLUME_MAX_BYTES = 1024 * 1024 * 1024
"""A volume is sealed once it reaches this size."""
READ_PIECE = 1024 * 1024

# Authentication
MAX_CLOCK_SKEW_SECONDS = 15 * 60
MAX_PRESIGN_EXPIRES_SECONDS = 7 * 24 * 3600

# Multipart uploads
MIN_PART_SIZE = 5 * 1024 * 1024
"""Every part but the last must be at least this big (S3: EntityTooSmall at completion)."""
MAX_PART_SIZE = 5 * 1024**3
MAX_PART_NUMBER = 10_000
MAX_PARTS_PER_LIST = 1000
MAX_UPLOADS_PER_LIST = 1000
