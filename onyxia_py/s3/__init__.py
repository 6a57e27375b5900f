"""S3 adapter: the only package that imports `boto3` and `botocore`."""

from onyxia_py.s3.clients import compact
from onyxia_py.s3.ports import (
    ObjectEntry,
    ObjectHead,
    ObjectPage,
    ObjectStore,
    ObjectStream,
    PolicyDocument,
    TemporaryCredentials,
    TokenService,
)
from onyxia_py.s3.store import BotoObjectStore
from onyxia_py.s3.sts import BotoTokenService

__all__ = [
    "BotoObjectStore",
    "BotoTokenService",
    "ObjectEntry",
    "ObjectHead",
    "ObjectPage",
    "ObjectStore",
    "ObjectStream",
    "PolicyDocument",
    "TemporaryCredentials",
    "TokenService",
    "compact",
]
