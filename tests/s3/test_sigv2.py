"""AWS Signature Version 2 end to end: botocore's own V2 signers (header and presigned), raw requests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from email.utils import formatdate
from pathlib import Path

import boto3
import pytest
from botocore.auth import HmacV1Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from s3util import Response, md5_b64, parse_error


def v2_client(server, secret_key: str | None = None, access_key: str | None = None):
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=access_key or server.access_key,
        aws_secret_access_key=secret_key or server.secret_key,
        region_name=server.region,
        config=Config(
            signature_version="s3", s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}
        ),
    )


def err(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def fetch(url: str, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None):
    req = urllib.request.Request(url, method=method, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return Response(resp.status, resp.reason, resp.headers, resp.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, e.reason, e.headers, e.read())


def v2_headers(server, method: str, resource: str, headers: dict[str, str], secret: str | None = None):
    """Sign like s3cmd does (its own string to sign, not botocore's): Date, x-amz-*, resource."""
    md5 = headers.get("Content-MD5", "")
    ctype = headers.get("Content-Type", "")
    amz = "".join(f"{k.lower()}:{v}\n" for k, v in sorted(headers.items()) if k.lower().startswith("x-amz-"))
    date = "" if any(k.lower() == "x-amz-date" for k in headers) else headers["Date"]
    sts = f"{method}\n{md5}\n{ctype}\n{date}\n{amz}{resource}"
    digest = hmac.digest((secret or server.secret_key).encode(), sts.encode(), "sha1")
    out = dict(headers)
    out["Authorization"] = f"AWS {server.access_key}:{base64.b64encode(digest).decode()}"
    return out


@pytest.mark.auth
def test_boto3_v2_round_trip(server, bucket):
    c = v2_client(server)
    body = b"hello sigv2" * 100
    put = c.put_object(
        Bucket=bucket, Key="dir/a b+c", Body=body, ContentType="text/plain", Metadata={"who": "v2"}
    )
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = c.get_object(Bucket=bucket, Key="dir/a b+c", ResponseContentDisposition="attachment")
    assert got["Body"].read() == body
    assert got["ContentDisposition"] == "attachment" and got["Metadata"] == {"who": "v2"}
    assert c.head_object(Bucket=bucket, Key="dir/a b+c")["ContentLength"] == len(body)
    listed = c.list_objects_v2(Bucket=bucket, Prefix="dir/")
    assert [o["Key"] for o in listed["Contents"]] == ["dir/a b+c"]
    c.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "dir/a b+c"})
    c.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "copy"}]})
    c.delete_object(Bucket=bucket, Key="dir/a b+c")
    assert c.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


@pytest.mark.auth
def test_boto3_v2_bucket_lifecycle_and_multipart(server):
    c = v2_client(server)
    name = f"v2-{int(time.time() * 1000)}"
    c.create_bucket(Bucket=name)
    try:
        assert name in [b["Name"] for b in c.list_buckets()["Buckets"]]
        mp = c.create_multipart_upload(Bucket=name, Key="mp")
        part = c.upload_part(Bucket=name, Key="mp", UploadId=mp["UploadId"], PartNumber=1, Body=b"x" * 100)
        assert c.list_parts(Bucket=name, Key="mp", UploadId=mp["UploadId"])["Parts"][0]["Size"] == 100
        assert c.list_multipart_uploads(Bucket=name)["Uploads"][0]["UploadId"] == mp["UploadId"]
        c.complete_multipart_upload(
            Bucket=name,
            Key="mp",
            UploadId=mp["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        )
        assert c.get_object(Bucket=name, Key="mp")["Body"].read() == b"x" * 100
        c.delete_object(Bucket=name, Key="mp")
    finally:
        c.delete_bucket(Bucket=name)


@pytest.mark.auth
def test_boto3_v2_wrong_secret_and_unknown_key(server, bucket):
    with pytest.raises(ClientError) as e:
        v2_client(server, secret_key="wrong").put_object(Bucket=bucket, Key="x", Body=b"x")
    assert err(e) == ("SignatureDoesNotMatch", 403)
    with pytest.raises(ClientError) as e:
        v2_client(server, access_key="AKIANOSUCHKEY0000000").list_objects(Bucket=bucket)
    assert err(e) == ("InvalidAccessKeyId", 403)
    with pytest.raises(ClientError):
        v2_client(server).head_object(Bucket=bucket, Key="x")  # nothing was stored


@pytest.mark.auth
def test_v2_presigned_get_put_and_overrides(server, s3, bucket):
    c = v2_client(server)
    s3.put_object(Bucket=bucket, Key="p", Body=b"presigned")
    url = c.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": "p", "ResponseContentType": "text/x-pails"},
        ExpiresIn=300,
    )
    assert "AWSAccessKeyId=" in url and "Signature=" in url and "Expires=" in url
    r = fetch(url)
    assert r.status == 200 and r.body == b"presigned", r.describe()
    assert r.header("Content-Type") == "text/x-pails"
    put_url = c.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up"}, ExpiresIn=300)
    target = put_url.split(server.raw.netloc, 1)[1]  # no Content-Type: none was signed
    r = server.raw.send("PUT", target, {"Host": server.raw.netloc, "Content-Length": "8"}, b"uploaded")
    assert r.status == 200, r.describe()
    assert s3.get_object(Bucket=bucket, Key="up")["Body"].read() == b"uploaded"


@pytest.mark.auth
def test_v2_presigned_expired_and_tampered(server, s3, bucket):
    c = v2_client(server)
    s3.put_object(Bucket=bucket, Key="p", Body=b"x")
    url = c.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=1)
    time.sleep(2)
    r = fetch(url)
    assert r.status == 403, r.describe()
    e = parse_error(r.body)
    assert e["Code"] == "AccessDenied" and e["Message"] == "Request has expired"
    url = c.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=300)
    r = fetch(url.replace(f"/{bucket}/p?", f"/{bucket}/other?"))
    assert r.status == 403 and parse_error(r.body)["Code"] == "SignatureDoesNotMatch", r.describe()
    r = fetch(url.replace("Expires=", "Expires=1"))
    assert r.status == 403, r.describe()


@pytest.mark.auth
def test_v2_hand_signed_with_x_amz_date_and_content_md5(server, s3, bucket):
    body = b"hand signed"
    headers = {
        "Host": server.raw.netloc,
        "x-amz-date": formatdate(usegmt=True),
        "Content-MD5": md5_b64(body),
        "Content-Type": "application/octet-stream",
        "x-amz-meta-k": "v",
        "Content-Length": str(len(body)),
    }
    r = server.raw.send("PUT", f"/{bucket}/hand", v2_headers(server, "PUT", f"/{bucket}/hand", headers), body)
    assert r.status == 200, r.describe()
    assert s3.head_object(Bucket=bucket, Key="hand")["Metadata"] == {"k": "v"}
    # Content-MD5 is still verified: a signed but wrong digest is BadDigest, nothing stored
    headers["Content-MD5"] = md5_b64(b"other")
    r = server.raw.send("PUT", f"/{bucket}/bad", v2_headers(server, "PUT", f"/{bucket}/bad", headers), body)
    assert r.status == 400 and parse_error(r.body)["Code"] == "BadDigest", r.describe()


@pytest.mark.auth
@pytest.mark.parametrize("offset", [-1200, 1200], ids=["20min-behind", "20min-ahead"])
def test_v2_request_time_too_skewed(server, bucket, offset):
    headers = {"Host": server.raw.netloc, "Date": formatdate(time.time() + offset, usegmt=True)}
    r = server.raw.send("GET", f"/{bucket}", v2_headers(server, "GET", f"/{bucket}", headers))
    assert r.status == 403 and parse_error(r.body)["Code"] == "RequestTimeTooSkewed", r.describe()


@pytest.mark.auth
@pytest.mark.parametrize(
    "auth",
    ["AWS nocolon", "AWS :c2lnbmF0dXJl", "AWS PAILSTESTROOTKEY0001:"],
    ids=["no-colon", "no-key", "no-sig"],
)
def test_v2_malformed_authorization(server, bucket, auth):
    headers = {"Host": server.raw.netloc, "Date": formatdate(usegmt=True), "Authorization": auth}
    r = server.raw.send("GET", f"/{bucket}", headers)
    assert r.status == 400 and parse_error(r.body)["Code"] == "InvalidArgument", r.describe()


@pytest.mark.auth
def test_v2_missing_date_is_access_denied(server, bucket):
    headers = v2_headers(server, "GET", f"/{bucket}", {"Host": server.raw.netloc, "Date": ""})
    del headers["Date"]
    r = server.raw.send("GET", f"/{bucket}", headers)
    assert r.status == 403 and parse_error(r.body)["Code"] == "AccessDenied", r.describe()


@pytest.mark.auth
@pytest.mark.needs_process
def test_v2_virtual_hosted_style(server, s3, bucket):
    """The canonical resource of a virtual-hosted-style request starts with the bucket from Host."""
    s3.put_object(Bucket=bucket, Key="vh/k", Body=b"virtual")
    host = f"{bucket}.localhost:{server.port}"
    request = AWSRequest(method="GET", url=f"http://{host}/vh/k")
    request.auth_path = f"/{bucket}/vh/k"
    HmacV1Auth(Credentials(server.access_key, server.secret_key)).add_auth(request)
    headers = {"Host": host, **{k: str(v) for k, v in request.headers.items()}}
    r = server.raw.send("GET", "/vh/k", headers)
    assert r.status == 200 and r.body == b"virtual", r.describe()


@pytest.mark.auth
def test_both_v2_and_v4_is_rejected(server, bucket):
    headers = v2_headers(
        server, "GET", f"/{bucket}", {"Host": server.raw.netloc, "Date": formatdate(usegmt=True)}
    )
    r = server.raw.send("GET", f"/{bucket}?AWSAccessKeyId=x&Signature=y&Expires=1", headers)
    assert r.status == 400 and parse_error(r.body)["Code"] == "InvalidArgument", r.describe()


@pytest.mark.auth
def test_s3cmd_signature_v2(server, tmp_path):
    """s3cmd signs V2 with its own code (not botocore's): mb, put, ls, get, del, rb."""
    exe = shutil.which("s3cmd", path=str(Path(sys.executable).parent)) or shutil.which("s3cmd")
    if not exe:
        pytest.skip("s3cmd not installed")
    cfg = tmp_path / "s3cfg"
    hostport = server.raw.netloc
    cfg.write_text(
        f"[default]\naccess_key = {server.access_key}\nsecret_key = {server.secret_key}\n"
        f"host_base = {hostport}\nhost_bucket = {hostport}\nuse_https = False\nsignature_v2 = True\n"
    )
    name = f"s3cmd-v2-{int(time.time() * 1000)}"
    src = tmp_path / "f"
    src.write_bytes(b"s3cmd v2\n")

    def run(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, exe, "-c", str(cfg), *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        )
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc.stdout

    run("mb", f"s3://{name}")
    run("put", str(src), f"s3://{name}/dir/a+b c")
    assert "dir/a+b c" in run("ls", "-r", f"s3://{name}")
    run("get", "--force", f"s3://{name}/dir/a+b c", str(tmp_path / "g"))
    assert (tmp_path / "g").read_bytes() == b"s3cmd v2\n"
    run("del", f"s3://{name}/dir/a+b c")
    run("rb", f"s3://{name}")
