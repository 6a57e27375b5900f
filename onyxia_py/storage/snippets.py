"""Ready-to-paste snippets that use a set of temporary credentials: Python (boto3, s3fs,
pandas, polars, pyarrow), R (arrow, aws.s3), the AWS CLI, rclone and MLflow's environment."""

from __future__ import annotations

import json

from onyxia_py.storage.models import IssuedCredentials, Snippet


def _py(value: str) -> str:
    return json.dumps(value)  # a valid Python (and R) double-quoted string literal


def _sh(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def snippets(issued: IssuedCredentials) -> list[Snippet]:
    """Every snippet for `issued`, with its values filled in."""
    c, e, bucket = issued.credentials, issued.endpoint, issued.bucket
    key, secret, token = _py(c.access_key_id), _py(c.secret_access_key), _py(c.session_token)
    url, region = _py(e.url), _py(e.region)
    scheme = "https" if e.secure else "http"
    path = f"s3://{bucket}/"
    addressing = "path" if e.path_style else "virtual"
    env = (
        f"export AWS_ACCESS_KEY_ID={_sh(c.access_key_id)}\n"
        f"export AWS_SECRET_ACCESS_KEY={_sh(c.secret_access_key)}\n"
        f"export AWS_SESSION_TOKEN={_sh(c.session_token)}\n"
        f"export AWS_DEFAULT_REGION={_sh(e.region)}\n"
        f"export AWS_ENDPOINT_URL={_sh(e.url)}\n"
    )
    return [
        Snippet("env", "Environment variables", "shell", env),
        Snippet(
            "boto3",
            "Python: boto3",
            "python",
            "import boto3\n"
            "from botocore.config import Config\n\n"
            "s3 = boto3.client(\n"
            '    "s3",\n'
            f"    endpoint_url={url},\n"
            f"    region_name={region},\n"
            f"    aws_access_key_id={key},\n"
            f"    aws_secret_access_key={secret},\n"
            f"    aws_session_token={token},\n"
            f'    config=Config(s3={{"addressing_style": "{addressing}"}}),\n'
            ")\n"
            f'print(s3.list_objects_v2(Bucket={_py(bucket)}).get("KeyCount"))\n',
        ),
        Snippet(
            "s3fs",
            "Python: s3fs",
            "python",
            "import s3fs\n\n"
            "fs = s3fs.S3FileSystem(\n"
            f"    key={key},\n"
            f"    secret={secret},\n"
            f"    token={token},\n"
            f'    client_kwargs={{"endpoint_url": {url}, "region_name": {region}}},\n'
            ")\n"
            f"print(fs.ls({_py(bucket)}))\n",
        ),
        Snippet(
            "pandas",
            "Python: pandas",
            "python",
            "import pandas as pd\n\n"
            "options = {\n"
            f'    "key": {key},\n'
            f'    "secret": {secret},\n'
            f'    "token": {token},\n'
            f'    "client_kwargs": {{"endpoint_url": {url}, "region_name": {region}}},\n'
            "}\n"
            f"df = pd.read_csv({_py(path + 'data.csv')}, storage_options=options)\n",
        ),
        Snippet(
            "polars",
            "Python: polars",
            "python",
            "import polars as pl\n\n"
            "options = {\n"
            f'    "aws_access_key_id": {key},\n'
            f'    "aws_secret_access_key": {secret},\n'
            f'    "aws_session_token": {token},\n'
            f'    "aws_region": {region},\n'
            f'    "aws_endpoint_url": {url},\n'
            f'    "aws_virtual_hosted_style_request": "{str(not e.path_style).lower()}",\n'
            "}\n"
            f"df = pl.read_parquet({_py(path + 'data.parquet')}, storage_options=options)\n",
        ),
        Snippet(
            "pyarrow",
            "Python: pyarrow",
            "python",
            "import pyarrow.parquet as pq\n"
            "from pyarrow import fs\n\n"
            "s3 = fs.S3FileSystem(\n"
            f"    access_key={key},\n"
            f"    secret_key={secret},\n"
            f"    session_token={token},\n"
            f"    region={region},\n"
            f"    endpoint_override={_py(e.authority)},\n"
            f'    scheme="{scheme}",\n'
            ")\n"
            f"table = pq.read_table({_py(bucket + '/data.parquet')}, filesystem=s3)\n",
        ),
        Snippet(
            "r-arrow",
            "R: arrow",
            "r",
            "library(arrow)\n\n"
            "bucket <- s3_bucket(\n"
            f"  {_py(bucket)},\n"
            f"  access_key = {key},\n"
            f"  secret_key = {secret},\n"
            f"  session_token = {token},\n"
            f"  region = {region},\n"
            f"  endpoint_override = {_py(e.authority)},\n"
            f'  scheme = "{scheme}"\n'
            ")\n"
            'df <- read_parquet(bucket$path("data.parquet"))\n',
        ),
        Snippet(
            "r-aws-s3",
            "R: aws.s3",
            "r",
            "Sys.setenv(\n"
            f"  AWS_ACCESS_KEY_ID = {key},\n"
            f"  AWS_SECRET_ACCESS_KEY = {secret},\n"
            f"  AWS_SESSION_TOKEN = {token},\n"
            f"  AWS_DEFAULT_REGION = {region},\n"
            f"  AWS_S3_ENDPOINT = {_py(e.authority)}\n"
            ")\n"
            "library(aws.s3)\n"
            f"aws.s3::get_bucket({_py(bucket)}, region = {_py('')}, "
            f"use_https = {str(e.secure).upper()})\n",
        ),
        Snippet("aws-cli", "AWS CLI", "shell", env + f"aws s3 ls {_sh(path)}\n"),
        Snippet(
            "rclone",
            "rclone (~/.config/rclone/rclone.conf)",
            "ini",
            "[onyxia]\n"
            "type = s3\n"
            "provider = Other\n"
            f"access_key_id = {c.access_key_id}\n"
            f"secret_access_key = {c.secret_access_key}\n"
            f"session_token = {c.session_token}\n"
            f"region = {e.region}\n"
            f"endpoint = {e.url}\n"
            f"force_path_style = {str(e.path_style).lower()}\n"
            f"# rclone ls onyxia:{bucket}\n",
        ),
        Snippet(
            "mlflow",
            "MLflow artifacts (environment)",
            "shell",
            env + f"export MLFLOW_S3_ENDPOINT_URL={_sh(e.url)}\n",
        ),
    ]
