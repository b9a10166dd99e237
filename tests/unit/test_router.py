import pytest

from pails.api.router import resolve, split_host
from pails.errors import S3Error


def op(method: str, path: str, query: dict[str, str] | None = None, host: str = "127.0.0.1:9000"):
    return resolve(method, host, path, query or {}, "localhost")


def test_service_and_bucket_operations() -> None:
    assert op("GET", "/").operation == "ListBuckets"
    assert op("PUT", "/b").operation == "CreateBucket"
    assert op("HEAD", "/b/").operation == "HeadBucket"
    assert op("DELETE", "/b").operation == "DeleteBucket"
    assert op("GET", "/b", {"location": ""}).operation == "GetBucketLocation"
    assert op("GET", "/b", {"list-type": "2"}).operation == "ListObjectsV2"
    assert op("GET", "/b").operation == "ListObjects"
    assert op("POST", "/b", {"delete": ""}).operation == "DeleteObjects"


def test_object_keys_are_decoded_exactly() -> None:
    endpoint = op("GET", "/b/..%2F..%2Fetc%2Fpasswd")
    assert (endpoint.bucket, endpoint.key) == ("b", "../../etc/passwd")
    assert op("PUT", "/b/a//b").key == "a//b"
    assert op("PUT", "/b/dir/").key == "dir/"
    assert op("PUT", "/b/%252F").key == "%2F"
    assert op("PUT", "/b/a+b%20c").key == "a+b c"
    assert op("PUT", "/b/%F0%9F%98%80").key == "😀"


def test_virtual_hosted_style() -> None:
    endpoint = op("GET", "/photos/cat.jpg", host="my-bucket.localhost:9000")
    assert (endpoint.operation, endpoint.bucket, endpoint.key) == ("GetObject", "my-bucket", "photos/cat.jpg")
    assert op("GET", "/", host="my-bucket.localhost").operation == "ListObjects"
    assert split_host("localhost:9000", "localhost") is None
    assert split_host("127.0.0.1:9000", "localhost") is None


def test_unsupported_subresources_are_not_mistaken_for_plain_operations() -> None:
    with pytest.raises(S3Error) as err:
        op("PUT", "/b", {"lifecycle": ""})
    assert err.value.code == "NotImplemented" and err.value.status == 501
    with pytest.raises(S3Error):
        op("GET", "/b/k", {"cors": ""})


def test_authorization_subresources() -> None:
    for method, query, name in [
        ("GET", "policy", "GetBucketPolicy"),
        ("PUT", "policy", "PutBucketPolicy"),
        ("DELETE", "policy", "DeleteBucketPolicy"),
        ("GET", "policyStatus", "GetBucketPolicyStatus"),
        ("GET", "acl", "GetBucketAcl"),
        ("PUT", "acl", "PutBucketAcl"),
        ("GET", "publicAccessBlock", "GetPublicAccessBlock"),
        ("PUT", "publicAccessBlock", "PutPublicAccessBlock"),
        ("DELETE", "publicAccessBlock", "DeletePublicAccessBlock"),
    ]:
        assert op(method, "/b", {query: ""}).operation == name
    assert op("GET", "/b/k", {"acl": ""}).operation == "GetObjectAcl"
    assert op("PUT", "/b/k", {"acl": "", "versionId": "v"}).operation == "PutObjectAcl"
    assert op("POST", "/b", {}).operation == "PostObject"
    for method, path, query in [("DELETE", "/b", "acl"), ("POST", "/b", "policy"), ("DELETE", "/b/k", "acl")]:
        with pytest.raises(S3Error) as err:
            op(method, path, {query: ""})
        assert err.value.code == "MethodNotAllowed"


def test_tagging_subresource() -> None:
    for method, level in [("GET", "Get"), ("PUT", "Put"), ("DELETE", "Delete")]:
        assert op(method, "/b/k", {"tagging": ""}).operation == f"{level}ObjectTagging"
        assert op(method, "/b/k", {"tagging": "", "versionId": "v"}).operation == f"{level}ObjectTagging"
        assert op(method, "/b", {"tagging": ""}).operation == f"{level}BucketTagging"
    with pytest.raises(S3Error) as err:
        op("POST", "/b/k", {"tagging": ""})
    assert err.value.code == "MethodNotAllowed"
    with pytest.raises(S3Error) as err:
        op("POST", "/b", {"tagging": ""})
    assert err.value.code == "NotImplemented"


def test_invalid_utf8_path_is_rejected() -> None:
    with pytest.raises(S3Error) as err:
        op("GET", "/b/%FF")
    assert err.value.code == "InvalidURI"


def test_versions_and_attributes_subresources() -> None:
    assert op("GET", "/b", {"versions": ""}).operation == "ListObjectVersions"
    assert op("GET", "/b/k", {"attributes": ""}).operation == "GetObjectAttributes"
    for method, path, query in [
        ("PUT", "/b", {"versions": ""}),  # never CreateBucket
        ("DELETE", "/b", {"versions": ""}),
        ("PUT", "/b", {"attributes": ""}),
        ("GET", "/b/k", {"versions": ""}),
    ]:
        with pytest.raises(S3Error) as err:
            op(method, path, query)
        assert err.value.code == "NotImplemented", (method, path, query)
    with pytest.raises(S3Error) as err:
        op("PUT", "/b/k", {"attributes": ""})
    assert err.value.code == "MethodNotAllowed"


def test_bucket_versioning_subresource() -> None:
    assert op("PUT", "/b", {"versioning": ""}).operation == "PutBucketVersioning"
    assert op("GET", "/b", {"versioning": ""}).operation == "GetBucketVersioning"
    assert op("GET", "/b/k", {"versionId": "null"}).operation == "GetObject"
    assert op("DELETE", "/b/k", {"versionId": "x"}).operation == "DeleteObject"
    with pytest.raises(S3Error) as err:
        op("DELETE", "/b", {"versioning": ""})  # never DeleteBucket
    assert err.value.code == "NotImplemented"
