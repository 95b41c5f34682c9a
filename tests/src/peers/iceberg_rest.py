"""An Iceberg REST catalog server for the tests: the REST protocol's endpoints a writer uses
(config, namespaces, load/create/commit table) in front of pyiceberg's SqlCatalog, the way
Apache Iceberg's own REST test fixture (iceberg-rest-fixture) puts CatalogHandlers in front of
a JdbcCatalog. Requirements are checked and updates applied by pyiceberg, not by kingest's
code: a failed requirement is a 409. After a commit the server deletes the metadata files the
commit dropped from `metadata-log` when the table's `write.metadata.delete-after-commit.enabled`
says so, as Java's catalogs do when they write the metadata (the REST client does not own them).

Usage: python3 iceberg_rest.py PORT SQL_URI WAREHOUSE [PROPERTIES_JSON]
PROPERTIES_JSON: catalog properties, such as pyiceberg's FileIO settings for an s3:// warehouse
(`s3.endpoint`, `s3.access-key-id`, ...).
"""
import io
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Lock
from urllib.parse import unquote, urlparse

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.io import OutputFile
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.exceptions import (CommitFailedException, NamespaceAlreadyExistsError,
                                  NoSuchTableError, TableAlreadyExistsError)
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import CommitTableRequest

class Boto3WriteIO(PyArrowFileIO):
    """pyiceberg's pyarrow FileIO, but files are written with one boto3 PUT each: pyarrow's S3
    output stream always completes a multipart upload, and pyarrow 21 refuses moto's answer to
    CompleteMultipartUpload ("error embedded in a 200 OK response"). Reads and deletes stay
    pyarrow's. Selected with py-io-impl = "__main__.Boto3WriteIO" (the tests' S3 warehouse)."""

    def new_output(self, location):
        import boto3
        p = self.properties
        client = boto3.client("s3", endpoint_url=p["s3.endpoint"],
                              aws_access_key_id=p["s3.access-key-id"],
                              aws_secret_access_key=p["s3.secret-access-key"],
                              region_name=p.get("s3.region", "us-east-1"))
        return Boto3Output(location, client, self)


class Boto3Output(OutputFile):
    def __init__(self, location, client, io):
        super().__init__(location)
        self.client, self.io = client, io
        bucket_key = urlparse(location)
        self.bucket, self.key = bucket_key.netloc, bucket_key.path.lstrip("/")

    def __len__(self):
        return len(self.io.new_input(self.location))

    def exists(self):
        return self.io.new_input(self.location).exists()

    def to_input_file(self):
        return self.io.new_input(self.location)

    def create(self, overwrite=False):
        out = self

        class Put(io.BytesIO):
            def close(self):
                if not self.closed:
                    out.client.put_object(Bucket=out.bucket, Key=out.key, Body=self.getvalue())
                super().close()

        return Put()


port, uri, warehouse = int(sys.argv[1]), sys.argv[2], sys.argv[3]
properties = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
catalog = SqlCatalog("default", uri=uri, warehouse=warehouse, **properties)
lock = Lock()


def load_result(table):
    return {
        "metadata-location": table.metadata_location,
        "metadata": json.loads(table.metadata.model_dump_json(by_alias=True, exclude_none=True)),
        "config": {},
    }


class Handler(BaseHTTPRequestHandler):
    def send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, kind, message):
        self.send(status, {"error": {"message": message, "type": kind, "code": status}})

    def body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return json.loads(self.rfile.read(n) or b"{}")

    def parts(self):
        path = urlparse(self.path).path.strip("/").split("/")
        return [unquote(p) for p in path]

    def log_message(self, *args):
        pass

    def do_GET(self):
        p = self.parts()
        if p == ["v1", "config"]:
            return self.send(200, {"defaults": {}, "overrides": {}})
        if len(p) == 5 and p[:2] == ["v1", "namespaces"] and p[3] == "tables":
            try:
                with lock:
                    t = catalog.load_table((*p[2].split("\x1f"), p[4]))
                return self.send(200, load_result(t))
            except NoSuchTableError as e:
                return self.error(404, "NoSuchTableException", str(e))
        self.error(404, "NotFound", self.path)

    def do_POST(self):
        p = self.parts()
        body = self.body()
        try:
            if p == ["v1", "namespaces"]:
                with lock:
                    catalog.create_namespace(tuple(body["namespace"]), body.get("properties", {}))
                return self.send(200, {"namespace": body["namespace"], "properties": {}})
            if len(p) == 4 and p[:2] == ["v1", "namespaces"] and p[3] == "tables":
                ns = tuple(p[2].split("\x1f"))
                schema = Schema.model_validate(body["schema"])
                spec = PartitionSpec.model_validate(body.get("partition-spec") or {"spec-id": 0, "fields": []})
                with lock:
                    t = catalog.create_table(ns + (body["name"],), schema, location=body.get("location"),
                                             partition_spec=spec, properties=body.get("properties", {}))
                return self.send(200, load_result(t))
            if len(p) == 5 and p[:2] == ["v1", "namespaces"] and p[3] == "tables":
                req = CommitTableRequest.model_validate(body)
                with lock:
                    t = catalog.load_table((*p[2].split("\x1f"), p[4]))
                    resp = catalog.commit_table(t, req.requirements, req.updates)
                    catalog._delete_old_metadata(t.io, t.metadata, resp.metadata)
                return self.send(200, {"metadata-location": resp.metadata_location,
                                       "metadata": json.loads(resp.metadata.model_dump_json(by_alias=True, exclude_none=True))})
        except (NamespaceAlreadyExistsError, TableAlreadyExistsError) as e:
            return self.error(409, "AlreadyExistsException", str(e))
        except CommitFailedException as e:
            return self.error(409, "CommitFailedException", str(e))
        except NoSuchTableError as e:
            return self.error(404, "NoSuchTableException", str(e))
        except Exception as e:  # a bad request: say what pyiceberg said
            return self.error(400, "BadRequestException", f"{type(e).__name__}: {e}")
        self.error(404, "NotFound", self.path)


server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
print("listening", flush=True)
server.serve_forever()
