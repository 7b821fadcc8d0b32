#!/usr/bin/env python3
"""Asks a gRPC server for its grpc.health.v1 status, like grpc_health_probe (not in Debian).

Usage: grpc_health.py HOST:PORT [--service NAME] [--wait SECONDS]
Exit 0 when the status is SERVING, 1 otherwise (the status or the error is printed).
Needs python3-grpcio (Debian). The two tiny health messages are encoded by hand so no generated
protobuf code is needed:
  HealthCheckRequest  { string service = 1; }
  HealthCheckResponse { ServingStatus status = 1; }  UNKNOWN=0 SERVING=1 NOT_SERVING=2 SERVICE_UNKNOWN=3
"""
import argparse
import sys
import time

import grpc

STATUS_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_request(service):
    data = service.encode()
    return b"\x0a" + _varint(len(data)) + data if data else b""


def decode_status(payload):
    """Returns field 1 (varint) of a HealthCheckResponse; proto3 default 0 when absent."""
    status, i = 0, 0
    while i < len(payload):
        key, i = _read_varint(payload, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _read_varint(payload, i)
            if field == 1:
                status = value
        elif wire == 2:
            length, i = _read_varint(payload, i)
            i += length
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wire} in HealthCheckResponse")
    return status


def _read_varint(data, i):
    shift, value = 0, 0
    while True:
        if i >= len(data):
            raise ValueError("truncated varint in HealthCheckResponse")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7


def check(target, service="", timeout=2.0):
    """Returns (status_name, error_or_None) for one Health/Check call."""
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=lambda x: x,
            response_deserializer=lambda x: x,
        )
        try:
            payload = call(encode_request(service), timeout=timeout)
        except grpc.RpcError as err:
            return None, f"{err.code().name}: {err.details()}"
    return STATUS_NAMES.get(decode_status(payload), "INVALID"), None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="HOST:PORT of the gRPC server")
    parser.add_argument("--service", default="", help="health service name ('' = whole server)")
    parser.add_argument("--wait", type=float, default=0.0,
                        help="keep asking for up to this many seconds until SERVING")
    args = parser.parse_args()
    deadline = time.monotonic() + args.wait
    while True:
        status, error = check(args.target, args.service)
        if status == "SERVING":
            print(f"{args.target}: SERVING")
            return 0
        if time.monotonic() >= deadline:
            print(f"{args.target}: {status or error}", file=sys.stderr)
            return 1
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
