"""Pails' HTTP/1.1 server: httptools parses the wire, everything else is here (decision 0017)."""

from pails.api.http.body import BodyStream
from pails.api.http.protocol import Limits
from pails.api.http.request import Request
from pails.api.http.response import Response, StreamResponse, json_response
from pails.api.http.server import HttpServer

__all__ = ["BodyStream", "HttpServer", "Limits", "Request", "Response", "StreamResponse", "json_response"]
