"""Object storage: S3 credentials for users and their services, and the bucket browser."""
